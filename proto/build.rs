//! Compiles the provider contract with protox (pure Rust; no system `protoc`).
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let proto = "shs_relay/provider/v1/provider.proto";
    println!("cargo:rerun-if-changed={proto}");
    let fds = protox::compile([proto], ["."])?;
    tonic_prost_build::configure()
        .build_server(true)
        .build_client(true)
        // Prost with small per-call buffers (see `codec::SmallBuffers`).
        .codec_path("crate::codec::SmallBuffers")
        .compile_fds(fds)?;
    Ok(())
}
