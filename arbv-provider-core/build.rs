//! Compiles `proto/hub.proto` with protox, so no system `protoc` is needed.

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto_dir = concat!(env!("CARGO_MANIFEST_DIR"), "/../proto");
    let proto_file = format!("{proto_dir}/hub.proto");
    println!("cargo:rerun-if-changed={proto_file}");
    let descriptors = protox::compile([&proto_file], [proto_dir])?;
    tonic_prost_build::configure()
        .bytes(".")
        .compile_fds(descriptors)?;
    Ok(())
}
