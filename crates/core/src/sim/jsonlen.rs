//! The length of an Endpoints object's JSON, counted by hand. Every write of a Service's Endpoints
//! (up to 1,000 addresses, rewritten on each Pod change) charges its watchers its size; counting it
//! through the serializer was ~6% of a replay at 1,000 Pods. The metadata still goes through serde
//! (it is small and has many fields); the subsets are counted here, field by field in the order and
//! with the omissions of k8s-openapi's serializers, strings escaped as serde_json escapes them. A
//! test checks the count against serde_json on random objects.
//!
//! A new version of an Endpoints object shares every unchanged address with the one before
//! (`endpoints::sync_shared`), so `AddressLens` remembers each shared address's length: a write that
//! moves one of 1,000 addresses counts one address instead of a thousand.

use crate::controller::endpoints::{SharedEndpoints, SharedSubset};
use k8s_openapi::api::core::v1::{EndpointAddress, EndpointPort, ObjectReference};
use rustc_hash::FxHashMap;
use std::sync::Arc;

/// A JSON string's length: quotes, and the escapes serde_json writes (`\"`, `\\`, the short forms of
/// \b \f \n \r \t, `\u00XX` for other control characters; everything else as is).
fn str_len(s: &str) -> usize {
    // Most strings need no escape: one branch-free pass (it vectorizes) tells.
    if s.bytes()
        .filter(|&b| b < 0x20 || b == b'"' || b == b'\\')
        .count()
        == 0
    {
        return s.len() + 2;
    }
    2 + s
        .bytes()
        .map(|b| match b {
            b'"' | b'\\' | 0x08 | 0x0c | b'\n' | b'\r' | b'\t' => 2,
            0..=0x1f => 6,
            _ => 1,
        })
        .sum::<usize>()
}

fn int_len(n: i32) -> usize {
    let mut len = usize::from(n < 0);
    let mut v = n.unsigned_abs();
    loop {
        len += 1;
        v /= 10;
        if v == 0 {
            return len;
        }
    }
}

/// An object of the fields present: each `"name":value`, commas between, braces around.
fn object<const N: usize>(fields: [(&str, Option<usize>); N]) -> usize {
    let present = fields
        .iter()
        .filter_map(|(name, v)| v.map(|v| name.len() + 3 + v));
    let (n, sum) = present.fold((0usize, 0usize), |(n, s), l| (n + 1, s + l));
    2 + sum + n.saturating_sub(1)
}

fn array<T>(items: &[T], len: impl FnMut(&T) -> usize) -> usize {
    2 + items.iter().map(len).sum::<usize>() + items.len().saturating_sub(1)
}

fn opt_str(s: &Option<String>) -> Option<usize> {
    s.as_deref().map(str_len)
}

fn reference_len(r: &ObjectReference) -> usize {
    object([
        ("apiVersion", opt_str(&r.api_version)),
        ("fieldPath", opt_str(&r.field_path)),
        ("kind", opt_str(&r.kind)),
        ("name", opt_str(&r.name)),
        ("namespace", opt_str(&r.namespace)),
        ("resourceVersion", opt_str(&r.resource_version)),
        ("uid", opt_str(&r.uid)),
    ])
}

fn address_len(a: &Arc<EndpointAddress>) -> usize {
    object([
        ("hostname", opt_str(&a.hostname)),
        ("ip", Some(str_len(&a.ip))),
        ("nodeName", opt_str(&a.node_name)),
        ("targetRef", a.target_ref.as_ref().map(reference_len)),
    ])
}

fn port_len(p: &EndpointPort) -> usize {
    object([
        ("appProtocol", opt_str(&p.app_protocol)),
        ("name", opt_str(&p.name)),
        ("port", Some(int_len(p.port))),
        ("protocol", opt_str(&p.protocol)),
    ])
}

/// How an address's length is found: counted, or looked up.
type AddrLen<'a> = &'a mut dyn FnMut(&Arc<EndpointAddress>) -> usize;

fn subset_len(s: &SharedSubset, addr: AddrLen) -> usize {
    let ready = s.addresses.as_deref().map(|a| array(a, &mut *addr));
    let not_ready = s.not_ready_addresses.as_deref().map(|a| array(a, &mut *addr));
    object([
        ("addresses", ready),
        ("notReadyAddresses", not_ready),
        ("ports", s.ports.as_deref().map(|p| array(p, port_len))),
    ])
}

fn endpoints_len_by(e: &SharedEndpoints, addr: AddrLen) -> Option<usize> {
    // Through a JSON value: the serializers for values are in the wasm anyway.
    let meta = serde_json::to_value(&e.metadata).ok()?.to_string().len();
    let subsets = e.subsets.as_deref().map(|s| array(s, |s| subset_len(s, &mut *addr)));
    Some(object([
        ("apiVersion", Some(str_len("v1"))),
        ("kind", Some(str_len("Endpoints"))),
        ("metadata", Some(meta)),
        ("subsets", subsets),
    ]))
}

/// The length of `serde_json::to_string(e)`; `None` if the metadata does not serialize.
pub fn endpoints_len(e: &SharedEndpoints) -> Option<usize> {
    endpoints_len_by(e, &mut address_len)
}

/// The lengths of the addresses of the version of one Endpoints object counted last, by the
/// address's allocation. It holds the addresses themselves, so none of them can be freed and
/// another address made in its place while it is remembered.
#[derive(Default)]
pub struct AddressLens(FxHashMap<usize, (Arc<EndpointAddress>, usize)>);

/// `endpoints_len`, counting only the addresses `lens` does not hold (those of the version counted
/// before that this one does not share); `lens` then holds this version's.
pub fn endpoints_len_memo(e: &SharedEndpoints, lens: &mut AddressLens) -> Option<usize> {
    let before = std::mem::take(&mut lens.0);
    let mut now = FxHashMap::with_capacity_and_hasher(before.len(), Default::default());
    let len = endpoints_len_by(e, &mut |a: &Arc<EndpointAddress>| {
        let key = Arc::as_ptr(a) as usize;
        let n = before.get(&key).map_or_else(|| address_len(a), |(_, n)| *n);
        now.insert(key, (a.clone(), n));
        n
    });
    lens.0 = now;
    len
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::rng::Rng;
    use k8s_openapi::api::core::v1::{EndpointSubset, Endpoints};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;

    fn text(r: &mut Rng) -> String {
        const PIECES: [&str; 12] = [
            "a", "web-7", "10.1.0.1", "\"", "\\", "\n", "\t", "\u{1}", "\u{7f}", "é", "6¾", "/",
        ];
        (0..r.below(6))
            .map(|_| PIECES[r.below(PIECES.len() as u64) as usize])
            .collect()
    }

    fn opt(r: &mut Rng) -> Option<String> {
        (r.below(3) > 0).then(|| text(r))
    }

    fn list<T>(r: &mut Rng, f: impl Fn(&mut Rng) -> T) -> Option<Vec<T>> {
        match r.below(4) {
            0 => None,
            n => Some((0..(n - 1) * 2).map(|_| f(r)).collect()),
        }
    }

    fn random(r: &mut Rng) -> Endpoints {
        let address = |r: &mut Rng| EndpointAddress {
            hostname: opt(r),
            ip: text(r),
            node_name: opt(r),
            target_ref: (r.below(2) == 0).then(|| ObjectReference {
                api_version: opt(r),
                field_path: opt(r),
                kind: opt(r),
                name: opt(r),
                namespace: opt(r),
                resource_version: opt(r),
                uid: opt(r),
            }),
        };
        let port = |r: &mut Rng| EndpointPort {
            app_protocol: opt(r),
            name: opt(r),
            port: [0, 7, 80, 65535, -1, i32::MIN, i32::MAX][r.below(7) as usize],
            protocol: opt(r),
        };
        Endpoints {
            metadata: ObjectMeta {
                name: opt(r),
                namespace: opt(r),
                uid: opt(r),
                generation: (r.below(2) == 0).then(|| r.next_u64() as i64),
                labels: list(r, |r| (text(r), text(r))).map(|v| v.into_iter().collect()),
                annotations: list(r, |r| (text(r), text(r))).map(|v| v.into_iter().collect()),
                ..Default::default()
            },
            subsets: list(r, |r| EndpointSubset {
                addresses: list(r, address),
                not_ready_addresses: list(r, address),
                ports: list(r, port),
            }),
        }
    }

    #[test]
    fn counts_what_serde_json_writes() {
        let mut r = Rng::new(7);
        for i in 0..3000 {
            let e = random(&mut r);
            let want = serde_json::to_string(&e).unwrap().len();
            assert_eq!(
                endpoints_len(&SharedEndpoints::from(&e)),
                Some(want),
                "object {i}: {}",
                serde_json::to_string(&e).unwrap()
            );
        }
    }

    #[test]
    fn the_memo_counts_what_serde_json_writes_across_versions() {
        let mut r = Rng::new(11);
        let mut lens = AddressLens::default();
        let mut e = SharedEndpoints::from(&random(&mut r));
        for i in 0..2000 {
            // The next version: most addresses shared with this one, some changed in place (a new
            // allocation), sometimes a whole new object.
            if r.below(10) == 0 {
                e = SharedEndpoints::from(&random(&mut r));
            } else {
                for s in e.subsets.iter_mut().flatten() {
                    for a in s.addresses.iter_mut().chain(s.not_ready_addresses.iter_mut()).flatten() {
                        if r.below(4) == 0 {
                            Arc::make_mut(a).ip = text(&mut r);
                        }
                    }
                }
            }
            let want = serde_json::to_string(&e.to_endpoints()).unwrap().len();
            assert_eq!(endpoints_len_memo(&e, &mut lens), Some(want), "version {i}");
            let held: usize = e.subsets.iter().flatten().map(|s| s.addresses.iter().chain(s.not_ready_addresses.iter()).flatten().count()).sum();
            assert!(lens.0.len() <= held, "the memo holds only this version's addresses");
        }
    }

    #[test]
    fn numbers_and_escapes() {
        for n in [0, 9, 10, -1, -10, 65535, i32::MIN, i32::MAX] {
            assert_eq!(int_len(n), n.to_string().len(), "{n}");
        }
        for s in [
            "",
            "a\"b",
            "\\",
            "\u{0}\u{1f}",
            "\u{8}\u{c}\n\r\t",
            "é¾",
            "\u{7f}",
        ] {
            assert_eq!(str_len(s), serde_json::to_string(s).unwrap().len(), "{s:?}");
        }
    }
}
