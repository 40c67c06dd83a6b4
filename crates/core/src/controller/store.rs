//! A minimal API-server store of EndpointSlices: it names created slices from `generateName` with a
//! seeded 5-character suffix, counts generations (1 on create, +1 on update), and lists a Service's
//! managed slices. The CLI and the first page use it; the simulation has a fuller API server.

use std::collections::BTreeMap;

use k8s_openapi::api::core::v1::Service;
use k8s_openapi::api::discovery::v1::EndpointSlice;

use super::reconciler::{ApiCall, Verb};
use super::{LABEL_MANAGED_BY, LABEL_SERVICE_NAME};
use crate::rng::Rng;

/// What applying a list of calls did, by name.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Applied {
    pub created: Vec<String>,
    pub updated: Vec<String>,
    pub deleted: Vec<String>,
}

#[derive(Clone, Debug)]
pub struct SliceStore {
    /// Keyed by (namespace, name).
    slices: BTreeMap<(String, String), EndpointSlice>,
    rng: Rng,
}

impl SliceStore {
    pub fn new(seed: u64) -> Self {
        SliceStore { slices: BTreeMap::new(), rng: Rng::new(seed) }
    }

    /// A store holding these slices as they are (slices without a name are skipped).
    pub fn with_slices(seed: u64, slices: &[EndpointSlice]) -> Self {
        let mut st = SliceStore::new(seed);
        for s in slices {
            if let Some(name) = s.metadata.name.clone() {
                st.slices.insert((s.metadata.namespace.clone().unwrap_or_default(), name), s.clone());
            }
        }
        st
    }

    fn unique_name(&mut self, ns: &str, prefix: &str) -> String {
        loop {
            let name = format!("{prefix}{}", self.rng.name_suffix());
            if !self.slices.contains_key(&(ns.to_string(), name.clone())) {
                return name;
            }
        }
    }

    /// Apply calls in order, as the API server would.
    pub fn apply(&mut self, calls: &[ApiCall]) -> Applied {
        let mut applied = Applied::default();
        for c in calls {
            let ns = c.slice.metadata.namespace.clone().unwrap_or_default();
            match c.verb {
                Verb::Create => {
                    let mut s = c.slice.clone();
                    let name = match s.metadata.name.clone() {
                        Some(n) if !n.is_empty() => n,
                        _ => {
                            let prefix = s.metadata.generate_name.clone().unwrap_or_default();
                            self.unique_name(&ns, &prefix)
                        }
                    };
                    s.metadata.name = Some(name.clone());
                    s.metadata.generation = Some(1);
                    self.slices.insert((ns, name.clone()), s);
                    applied.created.push(name);
                }
                Verb::Update => {
                    let name = c.slice.metadata.name.clone().unwrap_or_default();
                    let key = (ns, name.clone());
                    let previous = self.slices.get(&key);
                    let generation = previous.and_then(|p| p.metadata.generation).unwrap_or(0) + 1;
                    let mut s = c.slice.clone();
                    if let Some(p) = previous {
                        // The API server keeps identity fields the client did not send.
                        if s.metadata.uid.is_none() {
                            s.metadata.uid = p.metadata.uid.clone();
                        }
                        if s.metadata.creation_timestamp.is_none() {
                            s.metadata.creation_timestamp = p.metadata.creation_timestamp.clone();
                        }
                    }
                    s.metadata.generation = Some(generation);
                    self.slices.insert(key, s);
                    applied.updated.push(name);
                }
                Verb::Delete => {
                    let name = c.slice.metadata.name.clone().unwrap_or_default();
                    self.slices.remove(&(ns, name.clone()));
                    applied.deleted.push(name);
                }
            }
        }
        applied
    }

    /// Every slice, sorted by namespace and name.
    pub fn all(&self) -> impl Iterator<Item = &EndpointSlice> {
        self.slices.values()
    }

    /// The slices the controller lists for a Service: labelled with its name and managed by
    /// `controller_name`, in the Service's namespace, without a deletion timestamp.
    pub fn slices_for_service(&self, svc: &Service, controller_name: &str) -> Vec<EndpointSlice> {
        let ns = svc.metadata.namespace.clone().unwrap_or_default();
        let name = svc.metadata.name.as_deref().unwrap_or("");
        self.slices
            .range((ns.clone(), String::new())..)
            .take_while(|((n, _), _)| *n == ns)
            .map(|(_, s)| s)
            .filter(|s| {
                let l = s.metadata.labels.as_ref();
                l.and_then(|l| l.get(LABEL_SERVICE_NAME)).map(String::as_str) == Some(name)
                    && l.and_then(|l| l.get(LABEL_MANAGED_BY)).map(String::as_str) == Some(controller_name)
                    && s.metadata.deletion_timestamp.is_none()
            })
            .cloned()
            .collect()
    }

    pub fn len(&self) -> usize {
        self.slices.len()
    }

    pub fn is_empty(&self) -> bool {
        self.slices.is_empty()
    }
}
