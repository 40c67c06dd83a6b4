//! The simulated API server: objects by kind and key, resourceVersions, generations, and the watch
//! events each write produces.

use crate::cowmap::CowMap;
use crate::vecmap::VecMap;
use std::sync::Arc;

use crate::controller::endpoints::SharedEndpoints;
use k8s_openapi::api::core::v1::{Node, Pod, Service};
use k8s_openapi::api::discovery::v1::EndpointSlice;
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use serde::{Deserialize, Serialize};

use crate::rng::Rng;

/// The kinds the simulation stores.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
pub enum Kind {
    Node,
    Pod,
    Service,
    EndpointSlice,
    Endpoints,
}

/// Any stored object.
#[derive(Clone, Debug, PartialEq)]
pub enum Obj {
    Node(Node),
    Pod(Pod),
    Service(Service),
    EndpointSlice(EndpointSlice),
    /// The legacy Endpoints object, its addresses shared between versions (`to_endpoints` gives the
    /// API type).
    Endpoints(SharedEndpoints),
}

/// kube-proxies' slice caches keep the API's slice objects themselves.
impl crate::proxy::cache::SliceSource for Obj {
    fn slice(&self) -> Option<&EndpointSlice> {
        match self {
            Obj::EndpointSlice(s) => Some(s),
            _ => None,
        }
    }
}

impl Obj {
    pub fn kind(&self) -> Kind {
        match self {
            Obj::Node(_) => Kind::Node,
            Obj::Pod(_) => Kind::Pod,
            Obj::Service(_) => Kind::Service,
            Obj::EndpointSlice(_) => Kind::EndpointSlice,
            Obj::Endpoints(_) => Kind::Endpoints,
        }
    }

    pub fn meta(&self) -> &ObjectMeta {
        match self {
            Obj::Node(o) => &o.metadata,
            Obj::Pod(o) => &o.metadata,
            Obj::Service(o) => &o.metadata,
            Obj::EndpointSlice(o) => &o.metadata,
            Obj::Endpoints(o) => &o.metadata,
        }
    }

    pub fn meta_mut(&mut self) -> &mut ObjectMeta {
        match self {
            Obj::Node(o) => &mut o.metadata,
            Obj::Pod(o) => &mut o.metadata,
            Obj::Service(o) => &mut o.metadata,
            Obj::EndpointSlice(o) => &mut o.metadata,
            Obj::Endpoints(o) => &mut o.metadata,
        }
    }

    /// "namespace/name", or "name" for cluster-scoped objects.
    pub fn key(&self) -> String {
        key_of(self.meta())
    }

    /// The object as JSON, in the shape `kubectl get -o json` prints.
    pub fn to_json(&self) -> serde_json::Value {
        let r = match self {
            Obj::Node(o) => serde_json::to_value(super::lean::LeanNode(o)),
            Obj::Pod(o) => serde_json::to_value(super::lean::LeanPod(o)),
            Obj::Service(o) => serde_json::to_value(o),
            Obj::EndpointSlice(o) => serde_json::to_value(o),
            Obj::Endpoints(o) => serde_json::to_value(o.to_endpoints()),
        };
        r.unwrap_or(serde_json::Value::Null)
    }

    /// The length of the object's JSON. Slices and Endpoints (what watchers are charged for on
    /// every write) are counted with no tree and no buffer (Endpoints by hand: `jsonlen`); the
    /// other kinds through a JSON value, which keeps a second copy of their serializers out of the
    /// wasm.
    pub fn json_len(&self) -> usize {
        struct Count(usize);
        impl std::io::Write for Count {
            fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
                self.0 += b.len();
                Ok(b.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let mut c = Count(0);
        let through_value = |v: Result<serde_json::Value, serde_json::Error>| v.map(|v| v.to_string().len()).unwrap_or(0);
        let r = match self {
            Obj::Node(o) => return through_value(serde_json::to_value(super::lean::LeanNode(o))),
            Obj::Pod(o) => return through_value(serde_json::to_value(super::lean::LeanPod(o))),
            Obj::Service(o) => return through_value(serde_json::to_value(o)),
            Obj::EndpointSlice(o) => serde_json::to_writer(&mut c, o),
            Obj::Endpoints(o) => return super::jsonlen::endpoints_len(o).unwrap_or(0),
        };
        r.map(|_| c.0).unwrap_or(0)
    }
}

pub fn key_of(m: &ObjectMeta) -> String {
    match m.namespace.as_deref() {
        Some(ns) if !ns.is_empty() => {
            let name = m.name.as_deref().unwrap_or("");
            let mut k = String::with_capacity(ns.len() + 1 + name.len());
            k.push_str(ns);
            k.push('/');
            k.push_str(name);
            k
        }
        _ => m.name.clone().unwrap_or_default(),
    }
}

/// What happened to an object.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum WatchType {
    Added,
    Modified,
    Deleted,
}

/// A watch event: the object after the write (or as it was, for a delete).
#[derive(Clone, Debug, PartialEq)]
pub struct WatchEvent {
    pub type_: WatchType,
    /// Shared: one write reaches every watcher without a copy per watcher.
    pub obj: Arc<Obj>,
}

/// The API server's store.
#[derive(Clone, Debug)]
pub struct ApiServer {
    /// Shared with watch events, informers and timeline snapshots: a snapshot copies only the map.
    objects: VecMap<Kind, CowMap<Arc<str>, Arc<Obj>>>,
    resource_version: u64,
    uid_counter: u64,
    rng: Rng,
    /// Writes by kind and verb, for the summary.
    pub writes: VecMap<String, u64>,
    /// Bytes of every write's object, times the watchers that receive it, per kind.
    pub watch_bytes: VecMap<String, u64>,
    /// The simulation's clock, for creation timestamps.
    pub now_ms: u64,
    /// Address lengths of the Endpoints objects counted last (a pure cache, not copied).
    endpoints_lens: EndpointsLens,
}

/// Per Endpoints object, the address lengths its last write was counted with. A copy (a timeline
/// snapshot) starts empty: only the first write after it counts every address again.
#[derive(Default)]
struct EndpointsLens(VecMap<String, super::jsonlen::AddressLens>);

impl Clone for EndpointsLens {
    fn clone(&self) -> Self {
        EndpointsLens::default()
    }
}

impl std::fmt::Debug for EndpointsLens {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "EndpointsLens({} objects)", self.0.len())
    }
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ApiError {
    NotFound(String),
    AlreadyExists(String),
    Conflict(String),
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            ApiError::NotFound(k) => write!(f, "{k} not found"),
            ApiError::AlreadyExists(k) => write!(f, "{k} already exists"),
            ApiError::Conflict(k) => write!(f, "{k}: the object has been modified"),
        }
    }
}

impl ApiServer {
    /// For the memory example: drop the objects kind by kind, calling `mark` after each.
    #[doc(hidden)]
    pub fn drop_parts(&mut self, mark: &mut dyn FnMut(&'static str)) {
        for kind in [Kind::EndpointSlice, Kind::Endpoints, Kind::Pod] {
            self.objects.remove(&kind);
            mark(match kind {
                Kind::EndpointSlice => "api slices",
                Kind::Endpoints => "api endpoints",
                _ => "api pods",
            });
        }
        self.objects = Default::default();
        mark("api rest");
    }

    pub fn new(seed: u64) -> Self {
        ApiServer {
            objects: VecMap::new(),
            resource_version: 0,
            uid_counter: 0,
            rng: Rng::new(seed ^ 0xA11),
            writes: VecMap::new(),
            watch_bytes: VecMap::new(),
            now_ms: 0,
            endpoints_lens: EndpointsLens::default(),
        }
    }

    pub fn resource_version(&self) -> u64 {
        self.resource_version
    }

    fn count(&mut self, kind: Kind, verb: &str) {
        *self.writes.entry(format!("{verb} {kind:?}")).or_insert(0) += 1;
    }

    /// Create; a missing name is generated from `generateName`.
    pub fn create(&mut self, mut obj: Obj) -> Result<WatchEvent, ApiError> {
        let kind = obj.kind();
        if obj.meta().name.as_deref().unwrap_or("").is_empty() {
            let prefix = obj.meta().generate_name.clone().unwrap_or_default();
            loop {
                let name = format!("{prefix}{}", self.rng.name_suffix());
                let mut probe = obj.meta().clone();
                probe.name = Some(name.clone());
                if self.get(kind, &key_of(&probe)).is_none() {
                    obj.meta_mut().name = Some(name);
                    break;
                }
            }
        }
        let key = obj.key();
        if self.get(kind, &key).is_some() {
            return Err(ApiError::AlreadyExists(key));
        }
        self.resource_version += 1;
        self.uid_counter += 1;
        let rv = self.resource_version;
        let uid = self.uid_counter;
        let m = obj.meta_mut();
        m.resource_version = Some(rv.to_string());
        if m.uid.is_none() {
            m.uid = Some(format!("uid-{uid:06}"));
        }
        m.generation = Some(1);
        if m.creation_timestamp.is_none() {
            // Virtual time, counted from the Unix epoch.
            if let Ok(ts) = k8s_openapi::jiff::Timestamp::from_millisecond(self.now_ms as i64) {
                m.creation_timestamp = Some(k8s_openapi::apimachinery::pkg::apis::meta::v1::Time(ts));
            }
        }
        let obj = Arc::new(obj);
        self.put(kind, key, &obj);
        self.count(kind, "create");
        Ok(WatchEvent { type_: WatchType::Added, obj })
    }

    /// Update (unconditional: the simulation's clients never race). The generation rises by one.
    pub fn update(&mut self, mut obj: Obj) -> Result<WatchEvent, ApiError> {
        let kind = obj.kind();
        let key = obj.key();
        let prev = self.get(kind, &key).ok_or_else(|| ApiError::NotFound(key.clone()))?;
        let pm = prev.meta().clone();
        self.resource_version += 1;
        let m = obj.meta_mut();
        m.resource_version = Some(self.resource_version.to_string());
        m.uid = pm.uid.clone();
        m.generation = Some(pm.generation.unwrap_or(0) + 1);
        if m.creation_timestamp.is_none() {
            m.creation_timestamp = pm.creation_timestamp.clone();
        }
        let obj = Arc::new(obj);
        self.put(kind, key, &obj);
        self.count(kind, "update");
        Ok(WatchEvent { type_: WatchType::Modified, obj })
    }

    /// Store an object under its key (the key's string is made only for a new one).
    fn put(&mut self, kind: Kind, key: String, obj: &Arc<Obj>) {
        let m = self.objects.entry(kind).or_default();
        match m.get_mut(key.as_str()) {
            Some(o) => *o = obj.clone(),
            None => {
                m.insert(key.into(), obj.clone());
            }
        }
    }

    pub fn delete(&mut self, kind: Kind, key: &str) -> Result<WatchEvent, ApiError> {
        let obj = self
            .objects
            .get_mut(&kind)
            .and_then(|m| m.remove(key))
            .ok_or_else(|| ApiError::NotFound(key.to_string()))?;
        self.resource_version += 1;
        self.count(kind, "delete");
        Ok(WatchEvent { type_: WatchType::Deleted, obj })
    }

    pub fn get(&self, kind: Kind, key: &str) -> Option<&Obj> {
        self.objects.get(&kind).and_then(|m| m.get(key)).map(|o| &**o)
    }

    /// Every object of a kind, sorted by key.
    pub fn list(&self, kind: Kind) -> impl Iterator<Item = &Obj> {
        self.list_shared(kind).map(|o| &**o)
    }

    /// Every object of a kind as shared pointers (cheap to clone).
    pub fn list_shared(&self, kind: Kind) -> impl Iterator<Item = &Arc<Obj>> {
        self.objects.get(&kind).into_iter().flat_map(|m| m.values())
    }

    pub fn pods(&self) -> impl Iterator<Item = &Pod> {
        self.list(Kind::Pod).filter_map(|o| if let Obj::Pod(p) = o { Some(p) } else { None })
    }

    pub fn nodes(&self) -> impl Iterator<Item = &Node> {
        self.list(Kind::Node).filter_map(|o| if let Obj::Node(n) = o { Some(n) } else { None })
    }

    pub fn services(&self) -> impl Iterator<Item = &Service> {
        self.list(Kind::Service).filter_map(|o| if let Obj::Service(s) = o { Some(s) } else { None })
    }

    pub fn slices(&self) -> impl Iterator<Item = &EndpointSlice> {
        self.list(Kind::EndpointSlice).filter_map(|o| if let Obj::EndpointSlice(s) = o { Some(s) } else { None })
    }

    pub fn endpoints(&self) -> impl Iterator<Item = &SharedEndpoints> {
        self.list(Kind::Endpoints).filter_map(|o| if let Obj::Endpoints(s) = o { Some(s) } else { None })
    }

    /// Every Pod with its key, sorted by key.
    pub fn pods_by_key(&self) -> impl Iterator<Item = (&str, &Pod)> {
        self.objects.get(&Kind::Pod).into_iter().flatten().filter_map(|(k, o)| match &**o {
            Obj::Pod(p) => Some((&**k, p)),
            _ => None,
        })
    }

    pub fn pod(&self, key: &str) -> Option<&Pod> {
        match self.get(Kind::Pod, key) {
            Some(Obj::Pod(p)) => Some(p),
            _ => None,
        }
    }

    pub fn node(&self, name: &str) -> Option<&Node> {
        match self.get(Kind::Node, name) {
            Some(Obj::Node(n)) => Some(n),
            _ => None,
        }
    }

    /// A Service, shared (no copy): the caller may go on changing the simulation while holding it.
    pub fn service_shared(&self, key: &str) -> Option<Arc<Obj>> {
        self.objects.get(&Kind::Service).and_then(|m| m.get(key)).filter(|o| matches!(***o, Obj::Service(_))).cloned()
    }

    pub fn service(&self, key: &str) -> Option<&Service> {
        match self.get(Kind::Service, key) {
            Some(Obj::Service(s)) => Some(s),
            _ => None,
        }
    }

    /// Count the bytes a watcher receives for this event.
    /// Only EndpointSlices and Endpoints are counted: the cost comparison the page draws.
    pub fn account_watch(&mut self, ev: &WatchEvent, watchers: u64) {
        if !matches!(ev.obj.kind(), Kind::EndpointSlice | Kind::Endpoints) {
            return;
        }
        let bytes = match &*ev.obj {
            Obj::Endpoints(e) => {
                let key = key_of(&e.metadata);
                let n = super::jsonlen::endpoints_len_memo(e, self.endpoints_lens.0.entry(key.clone()).or_default()).unwrap_or(0);
                if ev.type_ == WatchType::Deleted {
                    self.endpoints_lens.0.remove(&key);
                }
                n as u64
            }
            o => o.json_len() as u64,
        };
        *self.watch_bytes.entry(format!("{:?}", ev.obj.kind())).or_insert(0) += bytes * watchers;
    }
}
