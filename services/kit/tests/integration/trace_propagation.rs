//! W3C trace context flows from an incoming call's metadata into the calls
//! it makes, whether or not spans are exported.

use schakel_kit::telemetry::{TraceLayer, init, inject_trace_context};
use tower::{Layer, Service, ServiceExt};

#[tokio::test]
async fn incoming_trace_context_is_propagated_to_outgoing_calls() {
    // The global subscriber: this test binary has this one test.
    let _guard = init("test").unwrap();
    let inner = tower::service_fn(|_request: http::Request<()>| async move {
        let mut metadata = tonic::metadata::MetadataMap::new();
        inject_trace_context(&mut metadata);
        let traceparent = metadata
            .get("traceparent")
            .map(|v| v.to_str().unwrap().to_owned())
            .unwrap_or_default();
        Ok::<_, std::convert::Infallible>(
            http::Response::builder()
                .header("x-outgoing", traceparent)
                .body(())
                .unwrap(),
        )
    });
    let mut service = TraceLayer.layer(inner);

    let incoming = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01";
    let request = http::Request::builder()
        .uri("/schakel.v1.IdentityService/WhoAmI")
        .header("traceparent", incoming)
        .body(())
        .unwrap();
    let response = service.ready().await.unwrap().call(request).await.unwrap();
    let outgoing = response.headers()["x-outgoing"].to_str().unwrap();
    let parts: Vec<&str> = outgoing.split('-').collect();
    assert_eq!(parts.len(), 4, "{outgoing}");
    assert_eq!(parts[1], "4bf92f3577b34da6a3ce929d0e0e4736", "same trace");
    assert_ne!(
        parts[2], "00f067aa0ba902b7",
        "a child span of the caller's span"
    );

    // Without incoming context, a new trace starts.
    let request = http::Request::builder().uri("/x/y").body(()).unwrap();
    let response = service.ready().await.unwrap().call(request).await.unwrap();
    let fresh = response.headers()["x-outgoing"].to_str().unwrap();
    assert!(
        !fresh.is_empty() && !fresh.contains("4bf92f3577b34da6a3ce929d0e0e4736"),
        "{fresh}"
    );
}
