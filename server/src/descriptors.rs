//! The gRPC services and methods compiled into the binary, read from the descriptor sets
//! the build scripts embed: what the call metrics label and what the scope table must
//! cover.

use prost::Message;

/// Every method served, as (`package.Service`, `Method`).
pub fn methods() -> Vec<(String, String)> {
    let sets = [
        mercator_proto::FILE_DESCRIPTOR_SET,
        tonic_health::pb::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1::FILE_DESCRIPTOR_SET,
        tonic_reflection::pb::v1alpha::FILE_DESCRIPTOR_SET,
    ];
    let mut methods = Vec::new();
    for set in sets {
        // Compiled into the binary by build scripts: a set that does not decode would be
        // a build defect, and only costs its methods their labels.
        let Ok(set) = prost_types::FileDescriptorSet::decode(set) else {
            tracing::warn!("a compiled-in descriptor set does not decode");
            continue;
        };
        for file in set.file {
            let package = file.package();
            for service in &file.service {
                let full = if package.is_empty() {
                    service.name().to_string()
                } else {
                    format!("{package}.{}", service.name())
                };
                for method in &service.method {
                    methods.push((full.clone(), method.name().to_string()));
                }
            }
        }
    }
    methods
}

/// Every service served (`package.Service`), once each, in descriptor order.
pub fn services() -> Vec<String> {
    let mut services: Vec<String> = Vec::new();
    for (service, _) in methods() {
        if !services.contains(&service) {
            services.push(service);
        }
    }
    services
}
