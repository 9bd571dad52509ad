use arbv_provider::dev_hub::DevHub;

fn main() {
    let _ = DevHub::builder;
}
