use std::marker::PhantomData;
use std::rc::Rc;

use rpc_core::rpc_service;

#[rpc_service]
pub trait Local {
    async fn touch(&self, marker: PhantomData<Rc<u8>>);
}

fn main() {}
