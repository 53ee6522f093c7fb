use rpc_core::{Stream, rpc_service};

#[rpc_service]
pub trait Uploads {
    async fn many(&self, files: Vec<Stream<u8>>);
    async fn maybe(&self, file: Option<Stream<u8>>);
    async fn pair(&self, file: (Stream<u8>, u8));
    async fn boxed(&self, file: Box<Stream<u8>>);
}

fn main() {}
