//! Slicelab's core: the Kubernetes EndpointSlice controller (with the legacy Endpoints and mirroring
//! controllers), written from `shared/spec/endpointslice-controller.md` on the real `k8s-openapi` types.
//! No web dependencies: everything here is tested natively and compiles to wasm32 unchanged.

pub mod case;
pub mod controller;
pub mod cowmap;
pub mod fixtures;
pub mod float;
pub mod input;
pub mod paste;
pub mod ip;
pub mod proxy;
pub mod quantity;
pub mod rng;
pub mod sim;
pub mod sort;
pub mod vecmap;
pub mod yaml;
pub mod yaml_read;

pub use k8s_openapi;

/// An IP family, as kube-proxy and the controller see one.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum IpFamily {
    V4,
    V6,
}

impl IpFamily {
    /// The EndpointSlice `addressType` for this family.
    pub fn address_type(self) -> &'static str {
        match self {
            IpFamily::V4 => "IPv4",
            IpFamily::V6 => "IPv6",
        }
    }
}
