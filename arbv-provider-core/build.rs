//! Compiles `proto/hub.proto` with protox, so no system `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // Read when the script runs, not when it is compiled: cargo may reuse a compiled script for
    // another checkout of the same package (a shared target directory), which would then read
    // the first checkout's proto.
    let proto_dir = format!("{}/proto", std::env::var("CARGO_MANIFEST_DIR")?);
    let proto_file = format!("{proto_dir}/hub.proto");
    println!("cargo:rerun-if-changed={proto_file}");
    let descriptors = protox::compile([&proto_file], [&proto_dir])?;
    // A provider is a client over its own connection (`hub_connection`): the server stubs, and
    // the generated client's `connect` over tonic's `Channel`, are for the dev hub and the
    // tools and tests built with it.
    let dev_hub = std::env::var_os("CARGO_FEATURE_DEV_HUB").is_some();
    tonic_prost_build::configure()
        .build_server(dev_hub)
        .build_transport(dev_hub)
        .bytes(".")
        .compile_fds(descriptors)?;
    Ok(())
}
