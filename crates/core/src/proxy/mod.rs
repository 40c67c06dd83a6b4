//! kube-proxy, per node: the slice cache, endpoint categorisation and the data planes
//! (see `shared/spec/kube-proxy.md`).
