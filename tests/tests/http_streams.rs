//! Streams over the HTTP gateway: Server-Sent Events (read by curl, by a
//! raw TCP client and by Python's urllib), the WebSocket at `GET /rpc`
//! (tokio-tungstenite and jsonrpsee's `WsClient`), and the doors that
//! cannot carry a stream (REST without SSE, `POST /rpc`, XML-RPC) naming
//! the ones that can.

mod common;
#[path = "http_streams/doors.rs"]
mod doors;
#[path = "http_streams/service.rs"]
mod service;
#[path = "http_streams/sse.rs"]
mod sse;
#[path = "http_streams/websocket.rs"]
mod websocket;
