//! One V2 REST request answered by the gRPC method it stands for, in process: the message
//! is framed as gRPC and handed to the same layered service the gRPC listener serves
//! (`grpc::GrpcService`), so a REST call is authenticated, scoped, rate-limited, given
//! its deadline and budget, counted and bounded exactly as a gRPC call is, and answered by
//! the same handler. The cost is one protobuf encode and decode, small beside JSON.

use axum::http::{HeaderMap, Method, header};
use bytes::{Buf, BufMut, Bytes, BytesMut};
use http_body_util::{BodyExt, Full};
use prost::Message;
use tonic::Status;
use tower::{Service, ServiceExt};

use crate::grpc::GrpcService;
use crate::grpc::budget::Prebudgeted;
use crate::grpc::connection::ConnectionValues;

/// The headers a REST caller may send that the gRPC layers read (the request id is the
/// one the REST edge settled on: the caller's, or one it made).
const FORWARDED: [header::HeaderName; 2] = [
    header::AUTHORIZATION,
    header::HeaderName::from_static(crate::grpc::request_id::REQUEST_ID),
];

/// The gRPC timeout header: a REST caller may bound its call the gRPC way.
const GRPC_TIMEOUT: &str = "grpc-timeout";

/// Who is calling and over what: the headers the layers read and the connection's values.
#[derive(Debug, Clone)]
pub struct Caller {
    headers: HeaderMap,
    values: ConnectionValues,
}

impl Caller {
    /// The caller of a REST request with `headers`, on a connection with `values`.
    pub fn new(headers: &HeaderMap, values: ConnectionValues) -> Caller {
        let mut forwarded = HeaderMap::new();
        for name in FORWARDED {
            if let Some(value) = headers.get(&name) {
                forwarded.insert(name, value.clone());
            }
        }
        if let Some(value) = headers.get(GRPC_TIMEOUT) {
            forwarded.insert(GRPC_TIMEOUT, value.clone());
        }
        Caller {
            headers: forwarded,
            values,
        }
    }
}

/// The gRPC services, called in process.
#[derive(Debug, Clone)]
pub struct Gateway {
    service: GrpcService,
}

impl Gateway {
    /// A gateway to `service`, the layered gRPC services.
    pub fn new(service: GrpcService) -> Gateway {
        Gateway { service }
    }

    /// Calls the unary method at `path` (`/package.Service/Method`) with `message`.
    pub async fn call<Req: Message, Res: Message + Default>(
        &self,
        path: &'static str,
        message: &Req,
        caller: &Caller,
    ) -> Result<Res, Status> {
        let body = frame(message)?;
        let mut request = axum::http::Request::builder()
            .method(Method::POST)
            .uri(path)
            .header(header::CONTENT_TYPE, "application/grpc")
            .header(header::TE, "trailers")
            .body(tonic::body::Body::new(Full::new(body)))
            .map_err(|e| Status::internal(format!("building the call: {e}")))?;
        request.headers_mut().extend(caller.headers.clone());
        request.extensions_mut().insert(caller.values.clone());
        // The REST edge charged the budgets for this request's body (`rest/guard.rs`).
        request.extensions_mut().insert(Prebudgeted);
        let mut service = self.service.clone();
        let ready = ServiceExt::<axum::http::Request<tonic::body::Body>>::ready(&mut service);
        let response = match ready.await {
            Ok(ready) => ready.call(request).await,
            Err(never) => match never {},
        };
        let response = match response {
            Ok(response) => response,
            Err(never) => match never {},
        };
        let (parts, body) = response.into_parts();
        // Trailers-only: how tonic answers an error.
        if let Some(status) = Status::from_header_map(&parts.headers)
            && status.code() != tonic::Code::Ok
        {
            return Err(status);
        }
        let collected = body
            .collect()
            .await
            .map_err(|e| Status::internal(format!("reading the answer: {e}")))?;
        if let Some(status) = collected.trailers().and_then(Status::from_header_map)
            && status.code() != tonic::Code::Ok
        {
            return Err(status);
        }
        unframe(collected.to_bytes())
    }
}

/// A message in gRPC's length-prefixed framing, uncompressed.
fn frame(message: &impl Message) -> Result<Bytes, Status> {
    let len = message.encoded_len();
    let prefix =
        u32::try_from(len).map_err(|_| Status::invalid_argument("the request is over 4 GiB"))?;
    let mut buf = BytesMut::with_capacity(5 + len);
    buf.put_u8(0);
    buf.put_u32(prefix);
    message
        .encode(&mut buf)
        .map_err(|e| Status::internal(format!("encoding the call: {e}")))?;
    Ok(buf.freeze())
}

/// The one message of a unary answer.
fn unframe<Res: Message + Default>(mut bytes: Bytes) -> Result<Res, Status> {
    if bytes.len() < 5 || bytes.get_u8() != 0 {
        return Err(Status::internal(
            "the answer is not one uncompressed message",
        ));
    }
    let len = bytes.get_u32() as usize;
    if bytes.len() != len {
        return Err(Status::internal("the answer is not one whole message"));
    }
    Res::decode(bytes).map_err(|e| Status::internal(format!("decoding the answer: {e}")))
}
