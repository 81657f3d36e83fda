//! The control API: JSON over HTTP with a bearer token, and a read-only
//! web dashboard.
//!
//! At start the daemon writes its API URL to `control.url` and a fresh
//! random token to `control.token` (mode 0600) in the data directory; the
//! CLI reads both from there. Every request must carry
//! `Authorization: Bearer TOKEN`; the dashboard also accepts the token as a
//! `token` query parameter so it can be opened in a browser. A request
//! without a valid token gets 401 and nothing else.
//!
//! A cluster member with the cluster key also accepts a token derived
//! from that key for one forwarded role transfer
//! ([`super::role::forward_token`]), on that request's path only, and only
//! with the target, epoch and deadline it was made for.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;

use axum::extract::{Path as UrlPath, Query, Request, State};
use axum::http::{header, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use keymaster_api::{
    AddKeyRequest, AddZoneRequest, ErrorBody, RoleRequest, SignRequest, StatusInfo,
};
use serde::Deserialize;
use tokio::sync::watch;

use super::{unix_now, write_file_atomically, Daemon, ZoneError, CONTROL_FILE, TOKEN_FILE};

/// Writes the API URL and a new token into the data directory; returns the token.
pub fn write_endpoint(data_dir: &Path, address: SocketAddr) -> anyhow::Result<String> {
    let token = data_encoding::HEXLOWER.encode(&rand::random::<[u8; 32]>());
    write_file_atomically(&data_dir.join(TOKEN_FILE), token.as_bytes(), 0o600)?;
    let url = format!("http://{address}\n");
    write_file_atomically(&data_dir.join(CONTROL_FILE), url.as_bytes(), 0o644)?;
    Ok(token)
}

/// Largest body of a forwarded role transfer read to check its token.
const MAX_FORWARDED_BODY: usize = 16 * 1024;

#[derive(Clone)]
struct AppState {
    daemon: Arc<Daemon>,
    token: Arc<String>,
}

/// Serves the control API until shutdown.
pub async fn run(
    daemon: Arc<Daemon>,
    listener: tokio::net::TcpListener,
    token: String,
    mut shutdown: watch::Receiver<bool>,
) {
    let state = AppState {
        daemon,
        token: Arc::new(token),
    };
    let app = router(state);
    let stop = async move {
        let _ = shutdown.changed().await;
    };
    if let Err(error) = axum::serve(listener, app)
        .with_graceful_shutdown(stop)
        .await
    {
        tracing::error!(%error, "control API stopped");
    }
}

fn router(state: AppState) -> Router {
    let api = Router::new()
        .route("/status", get(status))
        .route("/zones", get(list_zones).post(add_zone))
        .route("/zones/:zone", get(show_zone))
        .route("/zones/:zone/reload", post(reload_zone))
        .route("/zones/:zone/import", post(import_zone))
        .route("/zones/:zone/sign", post(sign_zone))
        .route("/zones/:zone/unsign", post(unsign_zone))
        .route("/zones/:zone/keys", get(list_keys).post(add_key))
        .route("/zones/:zone/keys/import", post(import_key))
        .route("/zones/:zone/keys/:key/:action", post(key_action))
        .route("/zones/:zone/plan", get(plan_zone))
        .route("/zones/:zone/ds", get(show_ds))
        .route("/zones/:zone/role", get(show_role))
        .route("/zones/:zone/role/:action", post(change_role))
        .route("/servers", get(list_servers));
    Router::new()
        .nest(keymaster_api::API_PREFIX, api)
        .route("/", get(dashboard))
        .layer(middleware::from_fn_with_state(state.clone(), authorize))
        .with_state(state)
}

#[derive(Deserialize)]
struct TokenQuery {
    token: Option<String>,
}

/// Rejects requests without the bearer token.
async fn authorize(
    State(state): State<AppState>,
    Query(query): Query<TokenQuery>,
    mut request: Request,
    next: Next,
) -> Response {
    let header_token = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|value| value.to_str().ok())
        .and_then(|value| {
            let (scheme, token) = value.split_once(' ')?;
            scheme
                .eq_ignore_ascii_case("bearer")
                .then_some(token.trim())
        });
    // Only the dashboard takes the token from the URL, so that a browser
    // can open it. API clients send the header.
    let query_token = query
        .token
        .as_deref()
        .filter(|_| request.uri().path() == "/");
    let presented = header_token.or(query_token);
    let matches = |expected: &str| {
        presented.is_some_and(|token| constant_time_eq(token.as_bytes(), expected.as_bytes()))
    };
    let operator = matches(&state.token);
    let mut member = false;
    if !operator
        && request.method() == axum::http::Method::POST
        && super::role::forwardable(request.uri().path())
    {
        let presented = presented.map(str::to_string);
        let (checked, body) = forwarded_transfer(&state, request, presented.as_deref()).await;
        request = body;
        member = checked;
    }
    if member {
        // A request in the name of another member is never forwarded again.
        request.extensions_mut().insert(FromMember);
    }
    if !operator && !member {
        tracing::warn!(path = %request.uri().path(), "control API request without a valid token rejected");
        let body = ErrorBody {
            error: "missing or invalid bearer token; the CLI reads it from the data directory"
                .to_string(),
        };
        return (StatusCode::UNAUTHORIZED, Json(body)).into_response();
    }
    next.run(request).await
}

/// Checks the token of a forwarded role transfer against the request it
/// came with; returns whether it matched and the request to pass on.
async fn forwarded_transfer(
    state: &AppState,
    request: Request,
    presented: Option<&str>,
) -> (bool, Request) {
    let key = state
        .daemon
        .cluster
        .as_ref()
        .and_then(|link| link.key.as_ref());
    let (Some(key), Some(presented)) = (key, presented) else {
        return (false, request);
    };
    let (parts, body) = request.into_parts();
    let Ok(bytes) = axum::body::to_bytes(body, MAX_FORWARDED_BODY).await else {
        return (false, Request::from_parts(parts, axum::body::Body::empty()));
    };
    let expected = serde_json::from_slice::<RoleRequest>(&bytes)
        .ok()
        .and_then(|role| super::role::forward_token(key, parts.uri.path(), &role));
    let checked = expected
        .is_some_and(|expected| constant_time_eq(presented.as_bytes(), expected.as_bytes()));
    (
        checked,
        Request::from_parts(parts, axum::body::Body::from(bytes)),
    )
}

/// Marks a request authenticated with the token of forwarded transfers.
#[derive(Clone, Copy)]
struct FromMember;

/// Compares two byte strings in time independent of where they differ.
fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// An operator-facing error: 4xx for bad requests, 500 otherwise.
struct ApiError(ZoneError);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status = match &self.0 {
            ZoneError::NotFound(_) => StatusCode::NOT_FOUND,
            ZoneError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            ZoneError::BadName { .. } | ZoneError::BadRequest(_) | ZoneError::UnknownPolicy(_) => {
                StatusCode::BAD_REQUEST
            }
            error if error.is_client_error() => StatusCode::CONFLICT,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        let mut message = self.0.to_string();
        let mut source = std::error::Error::source(&self.0);
        while let Some(cause) = source {
            message.push_str(": ");
            message.push_str(&cause.to_string());
            source = cause.source();
        }
        (status, Json(ErrorBody { error: message })).into_response()
    }
}

type ApiResult<T> = Result<Json<T>, ApiError>;

/// Runs a blocking daemon operation off the async runtime.
async fn blocking<T: Send + 'static>(
    state: &AppState,
    operation: impl FnOnce(&Daemon) -> Result<T, ZoneError> + Send + 'static,
) -> ApiResult<T> {
    let daemon = state.daemon.clone();
    let joined = tokio::task::spawn_blocking(move || operation(&daemon)).await;
    match joined {
        Ok(result) => result.map(Json).map_err(ApiError),
        Err(error) => Err(ApiError(ZoneError::Publish {
            zone: "-".to_string(),
            message: format!("operation panicked: {error}"),
        })),
    }
}

async fn status(State(state): State<AppState>) -> Json<StatusInfo> {
    let daemon = &state.daemon;
    Json(StatusInfo {
        server: daemon.config.name.clone(),
        version: env!("CARGO_PKG_VERSION").to_string(),
        started: daemon.started,
        zones: daemon.zones.lock().map(|z| z.len()).unwrap_or(0),
        dns_addresses: daemon
            .config
            .listen
            .iter()
            .map(ToString::to_string)
            .collect(),
    })
}

async fn list_zones(State(state): State<AppState>) -> ApiResult<Vec<keymaster_api::ZoneInfo>> {
    blocking(&state, |daemon| daemon.zone_infos()).await
}

async fn show_zone(
    State(state): State<AppState>,
    UrlPath(zone): UrlPath<String>,
) -> ApiResult<keymaster_api::ZoneInfo> {
    blocking(&state, move |daemon| {
        daemon.zone_info(&super::zones::zone_name(&zone)?.0)
    })
    .await
}

async fn add_zone(
    State(state): State<AppState>,
    Json(request): Json<AddZoneRequest>,
) -> ApiResult<keymaster_api::ZoneInfo> {
    blocking(&state, move |daemon| {
        if request.cluster {
            if request.file.is_some() {
                return Err(ZoneError::Rejected {
                    zone: request.zone.clone(),
                    reason: "a cluster zone's records come as text in `content`, not as a file on \
                             the server; use `keymaster zone add ZONE --cluster --from-file PATH`"
                        .to_string(),
                });
            }
            return daemon.add_cluster_zone(&request.zone, request.content);
        }
        let Some(file) = request.file else {
            return Err(ZoneError::Rejected {
                zone: request.zone.clone(),
                reason: "give --file PATH".to_string(),
            });
        };
        daemon.add_zone(&request.zone, file.into())
    })
    .await
}

async fn reload_zone(
    State(state): State<AppState>,
    UrlPath(zone): UrlPath<String>,
) -> ApiResult<keymaster_api::ZoneInfo> {
    blocking(&state, move |daemon| daemon.reload_zone(&zone)).await
}

async fn import_zone(
    State(state): State<AppState>,
    UrlPath(zone): UrlPath<String>,
    Json(request): Json<keymaster_api::ImportZoneRequest>,
) -> ApiResult<keymaster_api::ZoneInfo> {
    blocking(&state, move |daemon| {
        daemon.import_zone(&zone, &request.content)
    })
    .await
}

async fn sign_zone(
    State(state): State<AppState>,
    UrlPath(zone): UrlPath<String>,
    Json(request): Json<SignRequest>,
) -> ApiResult<keymaster_api::ZoneInfo> {
    blocking(&state, move |daemon| {
        daemon.sign_zone(
            &zone,
            request.key_master.as_deref(),
            request.policy.as_deref(),
        )
    })
    .await
}

async fn unsign_zone(
    State(state): State<AppState>,
    UrlPath(zone): UrlPath<String>,
    Json(request): Json<keymaster_api::UnsignRequest>,
) -> ApiResult<keymaster_api::ZoneInfo> {
    blocking(&state, move |daemon| {
        daemon.unsign_zone(&zone, request.no_parent_ds)
    })
    .await
}

async fn list_keys(
    State(state): State<AppState>,
    UrlPath(zone): UrlPath<String>,
) -> ApiResult<Vec<keymaster_api::KeyInfo>> {
    blocking(&state, move |daemon| daemon.key_infos(&zone)).await
}

async fn add_key(
    State(state): State<AppState>,
    UrlPath(zone): UrlPath<String>,
    Json(request): Json<AddKeyRequest>,
) -> ApiResult<keymaster_api::KeyInfo> {
    blocking(&state, move |daemon| {
        daemon.add_key(
            &zone,
            request.role,
            request.algorithm.as_deref(),
            request.bits,
        )
    })
    .await
}

async fn import_key(
    State(state): State<AppState>,
    UrlPath(zone): UrlPath<String>,
    Json(request): Json<keymaster_api::ImportKeyRequest>,
) -> ApiResult<keymaster_api::KeyInfo> {
    blocking(&state, move |daemon| daemon.import_key(&zone, &request)).await
}

async fn key_action(
    State(state): State<AppState>,
    UrlPath((zone, key, action)): UrlPath<(String, String, String)>,
) -> ApiResult<keymaster_api::KeyInfo> {
    blocking(&state, move |daemon| {
        daemon.key_request(&zone, &key, &action)
    })
    .await
}

#[derive(Deserialize)]
struct PlanQuery {
    /// Length of the plan, such as `2y`.
    #[serde(rename = "for")]
    span: Option<String>,
}

async fn plan_zone(
    State(state): State<AppState>,
    UrlPath(zone): UrlPath<String>,
    Query(query): Query<PlanQuery>,
) -> ApiResult<Vec<keymaster_lifecycle::plan::PlannedEvent>> {
    blocking(&state, move |daemon| {
        let text = query.span.as_deref().unwrap_or("2y");
        let span = crate::schedule::parse_span(text)
            .map_err(|error| ZoneError::BadRequest(error.to_string()))?;
        daemon.plan(&zone, span)
    })
    .await
}

#[derive(Deserialize)]
struct DsQuery {
    digest: Option<String>,
}

async fn show_ds(
    State(state): State<AppState>,
    UrlPath(zone): UrlPath<String>,
    Query(query): Query<DsQuery>,
) -> ApiResult<keymaster_api::DsInfo> {
    blocking(&state, move |daemon| {
        let digest = match query.digest.as_deref().unwrap_or("sha256") {
            "sha256" => keymaster_keys::DigestType::Sha256,
            "sha384" => keymaster_keys::DigestType::Sha384,
            other => {
                return Err(ZoneError::Rejected {
                    zone: zone.clone(),
                    reason: format!("unknown digest {other:?}; use sha256 or sha384"),
                })
            }
        };
        daemon.ds_info(&zone, digest)
    })
    .await
}

async fn show_role(
    State(state): State<AppState>,
    UrlPath(zone): UrlPath<String>,
) -> ApiResult<keymaster_api::RoleInfo> {
    blocking(&state, move |daemon| daemon.show_role(&zone)).await
}

async fn change_role(
    State(state): State<AppState>,
    UrlPath((zone, action)): UrlPath<(String, String)>,
    headers: axum::http::HeaderMap,
    from_member: Option<axum::Extension<FromMember>>,
    Json(request): Json<RoleRequest>,
) -> ApiResult<keymaster_api::RoleInfo> {
    let named = headers
        .get(super::role::FORWARDED_BY)
        .and_then(|value| value.to_str().ok())
        .map(str::to_string);
    let forwarded_by = named.or_else(|| from_member.map(|_| "a member".to_string()));
    blocking(&state, move |daemon| {
        daemon.change_role(&zone, &action, request, forwarded_by.as_deref())
    })
    .await
}

async fn list_servers(State(state): State<AppState>) -> ApiResult<Vec<keymaster_api::ServerInfo>> {
    blocking(&state, |daemon| daemon.server_infos()).await
}

/// Serves the dashboard: one table of zones with their Key Master.
async fn dashboard(State(state): State<AppState>) -> Response {
    let zones = match blocking(&state, |daemon| daemon.zone_infos()).await {
        Ok(Json(zones)) => zones,
        Err(error) => return error.into_response(),
    };
    let mut rows = String::new();
    for zone in &zones {
        let cell = |value: Option<String>| escape_html(&value.unwrap_or_else(|| "-".to_string()));
        rows.push_str(&format!(
            "<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td><td>{:?}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
            escape_html(&zone.zone),
            if zone.is_signed { "signed" } else { "unsigned" },
            cell(zone.key_master_server.clone()),
            if zone.is_key_master { "this server" } else { "other" },
            zone.key_master_status,
            cell(zone.serial.map(|s| s.to_string())),
            cell(zone.key_waits.first().map(|wait| wait.what.clone())),
            cell(zone.error.clone()),
        ));
    }
    let daemon = &state.daemon;
    let page = format!(
        "<!doctype html><html><head><meta charset=\"utf-8\"><title>keymaster {name}</title>\
         <style>body{{font-family:sans-serif;margin:2em}}table{{border-collapse:collapse}}\
         td,th{{border:1px solid #999;padding:4px 8px;text-align:left}}</style></head><body>\
         <h1>keymaster on {name}</h1><p>Up since UNIX time {started}; now {now}.</p>\
         <table><tr><th>zone</th><th>DNSSEC</th><th>Key Master</th><th>role here</th>\
         <th>Key Master status</th><th>serial</th><th>key management waits for</th><th>error</th></tr>\n{rows}</table></body></html>",
        name = escape_html(&daemon.config.name),
        started = daemon.started,
        now = unix_now(),
    );
    Html(page).into_response()
}

fn escape_html(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}
