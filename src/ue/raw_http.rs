//! The load generator's HTTP client: one hyper HTTP/1.1 connection per worker, no pool, no
//! URL parsing per request. The generator shares the machine's cores with the server it
//! measures, so it must spend as little as it can (docs/performance.md).

use axum::http::HeaderValue;
use url::Url;

/// One keep-alive HTTP/1.1 connection of a load-generator worker, requests written by hand: the load
/// generator shares the machine's cores with the OP it measures, so every microsecond it
/// spends is one the OP does not get. (Plain-HTTP endpoints only; HTTPS goes through reqwest.)
#[derive(Debug)]
pub struct RawConnection {
    sender: hyper::client::conn::http1::SendRequest<http_body_util::Full<axum::body::Bytes>>,
    host: HeaderValue,
}

impl RawConnection {
    pub async fn open(endpoint: &Url) -> Result<Self, String> {
        let host = endpoint.host_str().ok_or("the endpoint has no host")?;
        let port = endpoint.port_or_known_default().unwrap_or(80);
        let stream = tokio::net::TcpStream::connect((host, port))
            .await
            .map_err(|e| format!("connect to {host}:{port}: {e}"))?;
        stream.set_nodelay(true).map_err(|e| e.to_string())?;
        let (sender, connection) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| e.to_string())?;
        tokio::spawn(connection);
        let authority = match endpoint.port() {
            Some(p) => format!("{host}:{p}"),
            None => host.to_owned(),
        };
        Ok(Self {
            sender,
            host: HeaderValue::from_str(&authority).map_err(|e| e.to_string())?,
        })
    }

    pub async fn send(
        &mut self,
        request: axum::http::request::Builder,
        body: axum::body::Bytes,
    ) -> Result<(axum::http::response::Parts, axum::body::Bytes), String> {
        use http_body_util::BodyExt;
        let request = request
            .header(axum::http::header::HOST, self.host.clone())
            .header(axum::http::header::USER_AGENT, super::USER_AGENT)
            .body(http_body_util::Full::new(body))
            .map_err(|e| e.to_string())?;
        self.sender.ready().await.map_err(|e| e.to_string())?;
        let response = self
            .sender
            .send_request(request)
            .await
            .map_err(|e| e.to_string())?;
        let (parts, body) = response.into_parts();
        let body = body.collect().await.map_err(|e| e.to_string())?.to_bytes();
        Ok((parts, body))
    }
}
