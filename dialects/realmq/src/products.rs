//! Products (`/api/v1/products`): the document's "产品" endpoints.

use std::collections::HashMap;
use std::sync::Arc;

use axum::body::Bytes;
use axum::extract::{Path, RawQuery, State};
use axum::routing::get;
use axum::{Json, Router};
use mqgate_kit::http::params::Params;
use mqgate_kit::http::time::format_datetime;
use serde::{Deserialize, Serialize};
use utoipa::ToSchema;

use crate::auth::Authenticated;
use crate::error::{Error, ErrorBody};
use crate::registry::{product_not_found, Product, ProductFields};
use crate::state::AppState;
use crate::status::{self, DeviceStatus};
use crate::wire::{
    bounded, flag, flag_schema, fuzzy_contains, json_object, page_of, paginate, required, Done,
    LenientInt, Meta,
};

pub fn router() -> Router<Arc<AppState>> {
    Router::new()
        .route("/api/v1/products", get(list).post(create))
        .route(
            "/api/v1/products/:id",
            get(detail).put(update).delete(delete),
        )
}

/// Body of create and update.
#[derive(Debug, Deserialize, ToSchema)]
pub struct ProductRequest {
    /// Unique product name.
    #[serde(default)]
    #[schema(required, value_type = String, min_length = 1, max_length = 1024, pattern = r"\S", example = "test")]
    pub name: Option<String>,
    #[serde(default, rename = "type")]
    #[schema(schema_with = product_type_schema)]
    pub kind: Option<LenientInt>,
    #[serde(default)]
    #[schema(schema_with = dynamic_reg_schema)]
    pub dynamic_reg: Option<LenientInt>,
    #[serde(default)]
    #[schema(schema_with = auth_type_schema)]
    pub auth_type: Option<LenientInt>,
    #[serde(default)]
    #[schema(max_length = 1024)]
    pub description: Option<String>,
    /// mqgate extension, on creation only: the product's key, so that devices can
    /// be registered under a key known in advance (a registry moved from RealMQ
    /// keeps its keys). Absent: 10 random hex digits. An update ignores it: a
    /// product's key never changes.
    #[serde(default)]
    #[schema(pattern = r"^[0-9A-Za-z_-]{1,32}$", example = "d9c44706a4")]
    pub product_key: Option<String>,
}

fn product_type_schema() -> utoipa::openapi::Object {
    flag_schema(
        "1 direct device (default), 2 gateway; a number or a numeric string.",
        &[1, 2],
        1,
    )
}

fn dynamic_reg_schema() -> utoipa::openapi::Object {
    flag_schema(
        "1 allow dynamic registration (default), 0 deny; a number or a numeric string.",
        &[0, 1],
        1,
    )
}

fn auth_type_schema() -> utoipa::openapi::Object {
    flag_schema(
        "1 secret-key authentication, the only kind supported (2, certificates, is refused); a number or a numeric string.",
        &[1],
        1,
    )
}

/// The most characters of a chosen product key.
const MAX_PRODUCT_KEY_LEN: usize = 32;

/// A chosen product key: 1 to 32 letters, digits, `-` or `_`.
fn product_key(value: Option<String>) -> Result<Option<String>, Error> {
    match value {
        None => Ok(None),
        Some(key)
            if (1..=MAX_PRODUCT_KEY_LEN).contains(&key.len())
                && key
                    .bytes()
                    .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') =>
        {
            Ok(Some(key))
        }
        Some(key) => Err(Error::invalid_parameter(format!(
            "invalid product_key {key:?}: 1 to {MAX_PRODUCT_KEY_LEN} letters, digits, '-' or '_'"
        ))),
    }
}

impl ProductRequest {
    /// The product's fields after this request; absent optional fields keep
    /// `current` (or take the documented default on create).
    fn fields(self, current: Option<&Product>) -> Result<ProductFields, Error> {
        let name = required(self.name, "name")?;
        bounded(&name, "name")?;
        if let Some(d) = &self.description {
            bounded(d, "description")?;
        }
        let kind = flag(self.kind, "type", &[1, 2], current.map_or(1, |p| p.kind))?;
        let dynamic_reg = flag(
            self.dynamic_reg,
            "dynamic_reg",
            &[0, 1],
            current.map_or(1, |p| p.dynamic_reg),
        )?;
        if self.auth_type == Some(LenientInt(2)) {
            return Err(Error::invalid_parameter(
                "auth_type 2 (certificate authentication) is not supported",
            ));
        }
        let auth_type = flag(self.auth_type, "auth_type", &[1], 1)?;
        Ok(ProductFields {
            name,
            kind,
            dynamic_reg,
            auth_type,
            description: self
                .description
                .or_else(|| current.and_then(|p| p.description.clone())),
        })
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductKeys {
    /// 16 hex digits.
    #[schema(example = "59cd34daa3d78b9f")]
    pub secret: String,
    /// 10 hex digits.
    #[schema(example = "d9c44706a4")]
    pub product_key: String,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductCreated {
    pub data: ProductKeys,
    #[schema(example = 0)]
    pub code: u32,
}

/// A product as the list shows it.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductSummary {
    #[serde(rename = "type")]
    #[schema(example = 1)]
    pub kind: i64,
    #[schema(example = 1)]
    pub status: i64,
    pub product_key: String,
    pub name: String,
    #[schema(example = 0)]
    pub model_status: i64,
    pub id: i64,
    pub dynamic_reg: i64,
    pub device_count: usize,
    pub description: Option<String>,
    /// `YYYY-MM-DD HH:MM:SS`.
    #[schema(example = "2025-04-22 14:45:14")]
    pub create_at: String,
    pub auth_type: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductList {
    pub meta: Meta,
    pub data: Vec<ProductSummary>,
    #[schema(example = 0)]
    pub code: u32,
}

/// A product as its detail shows it: with its secret and device counts.
#[derive(Debug, Serialize, ToSchema)]
pub struct ProductDetail {
    #[serde(rename = "type")]
    pub kind: i64,
    pub status: i64,
    pub product_secret: String,
    pub product_key: String,
    /// Devices connected now.
    pub online_count: usize,
    /// Devices that have connected before and are not connected now.
    pub offline_count: usize,
    pub name: String,
    pub model_status: i64,
    pub id: i64,
    pub dynamic_reg: i64,
    pub device_count: usize,
    pub description: Option<String>,
    pub create_at: String,
    pub auth_type: i64,
}

#[derive(Debug, Serialize, ToSchema)]
pub struct ProductDetailResponse {
    /// Always one element.
    pub data: Vec<ProductDetail>,
    #[schema(example = 0)]
    pub code: u32,
}

fn product_id(raw: &str) -> Result<i64, Error> {
    raw.parse()
        .map_err(|_| Error::not_found(format!("product {raw:?} not found")))
}

/// Create a product
///
/// Answers the product's key and secret. `product_key` (an mqgate extension)
/// chooses the key; devices name their product by it.
#[utoipa::path(
    post,
    path = "/api/v1/products",
    operation_id = "create_product",
    tag = "products",
    request_body(content = ProductRequest, example = json!({"name": "test", "product_key": "d9c44706a4"})),
    responses(
        (status = 200, description = "Created", body = ProductCreated),
        (status = 400, description = "Missing or invalid parameter, name or product_key taken (113)", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
    )
)]
pub async fn create(
    _: Authenticated,
    State(state): State<Arc<AppState>>,
    body: Bytes,
) -> Result<Json<ProductCreated>, Error> {
    let mut request = json_object::<ProductRequest>(&body)?;
    let key = product_key(request.product_key.take())?;
    let fields = request.fields(None)?;
    let product = state.registry.create_product(fields, key).await?;
    Ok(Json(ProductCreated {
        data: ProductKeys {
            secret: product.secret,
            product_key: product.product_key,
        },
        code: 0,
    }))
}

/// List products
///
/// Optionally filtered by a fragment of their name; in id order.
#[utoipa::path(
    get,
    path = "/api/v1/products",
    operation_id = "list_products",
    tag = "products",
    params(
        ("_page" = Option<i64>, Query, minimum = 1, example = 1, description = "Page number, from 1 (default 1)"),
        ("_limit" = Option<i64>, Query, minimum = 1, example = 10, description = "Page size (default 10)"),
        ("product_name" = Option<String>, Query, description = "Part of the product name, any case"),
    ),
    responses(
        (status = 200, description = "One page of products, in id order", body = ProductList),
        (status = 401, description = "Not authenticated", body = ErrorBody),
    )
)]
pub async fn list(
    _: Authenticated,
    State(state): State<Arc<AppState>>,
    RawQuery(query): RawQuery,
) -> Result<Json<ProductList>, Error> {
    let params = Params::from_query(query.as_deref());
    let page = page_of(&params);
    let name = params.get("product_name");
    state.registry.synced().await?;
    let (products, meta) = state.registry.read(|catalog| {
        let mut device_counts: HashMap<&str, usize> = HashMap::new();
        for d in catalog.devices() {
            *device_counts
                .entry(d.fields.product_key.as_str())
                .or_default() += 1;
        }
        let matching: Vec<&Product> = catalog
            .products()
            .filter(|p| name.is_none_or(|n| fuzzy_contains(&p.name, n)))
            .collect();
        let (page_items, meta) = paginate(matching, page);
        let rows: Vec<ProductSummary> = page_items
            .into_iter()
            .map(|p| ProductSummary {
                kind: p.kind,
                status: p.status,
                product_key: p.product_key.clone(),
                name: p.name.clone(),
                model_status: 0,
                id: p.id,
                dynamic_reg: p.dynamic_reg,
                device_count: device_counts
                    .get(p.product_key.as_str())
                    .copied()
                    .unwrap_or(0),
                description: p.description.clone(),
                create_at: format_datetime(p.created_at_ms),
                auth_type: p.auth_type,
            })
            .collect();
        (rows, meta)
    });
    Ok(Json(ProductList {
        meta,
        data: products,
        code: 0,
    }))
}

/// Get a product
///
/// With its secret and how many of its devices are online and offline.
#[utoipa::path(
    get,
    path = "/api/v1/products/{id}",
    operation_id = "get_product",
    tag = "products",
    params(("id" = i64, Path, minimum = 1, example = 1, description = "Product id")),
    responses(
        (status = 200, description = "The product, as a one-element array", body = ProductDetailResponse),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "No such product", body = ErrorBody),
    )
)]
pub async fn detail(
    _: Authenticated,
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<ProductDetailResponse>, Error> {
    let id = product_id(&id)?;
    state.registry.synced().await?;
    let (product, devices) = state.registry.read(|catalog| {
        let product = catalog.product(id).cloned();
        let devices: Vec<_> = product
            .as_ref()
            .map(|p| catalog.devices_of(&p.product_key).cloned().collect())
            .unwrap_or_default();
        (product, devices)
    });
    let product = product.ok_or_else(|| product_not_found(id))?;
    let sessions = status::sessions(
        devices.iter().map(|d| d.as_ref()),
        state.management.as_ref(),
    )
    .await;
    let statuses: Vec<DeviceStatus> = devices
        .iter()
        .zip(&sessions)
        .map(|(d, session)| status::status(d, session.as_ref()))
        .collect();
    let count = |wanted: DeviceStatus| statuses.iter().filter(|s| **s == wanted).count();
    Ok(Json(ProductDetailResponse {
        data: vec![ProductDetail {
            kind: product.kind,
            status: product.status,
            product_secret: product.secret,
            product_key: product.product_key,
            online_count: count(DeviceStatus::Online),
            offline_count: count(DeviceStatus::Offline),
            name: product.name,
            model_status: 0,
            id: product.id,
            dynamic_reg: product.dynamic_reg,
            device_count: devices.len(),
            description: product.description,
            create_at: format_datetime(product.created_at_ms),
            auth_type: product.auth_type,
        }],
        code: 0,
    }))
}

/// Update a product
///
/// Only `name` is required; absent fields keep their value.
#[utoipa::path(
    put,
    path = "/api/v1/products/{id}",
    operation_id = "update_product",
    tag = "products",
    params(("id" = i64, Path, minimum = 1, example = 1, description = "Product id")),
    request_body(content = ProductRequest, example = json!({"name": "test1"})),
    responses(
        (status = 200, description = "Updated", body = Done),
        (status = 400, description = "Missing or invalid parameter, name taken (113)", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "No such product", body = ErrorBody),
    )
)]
pub async fn update(
    _: Authenticated,
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
    body: Bytes,
) -> Result<Json<Done>, Error> {
    let id = product_id(&id)?;
    let request = json_object::<ProductRequest>(&body)?;
    state
        .registry
        .update_product(id, |current| request.fields(Some(current)))
        .await?;
    Ok(Json(Done::OK))
}

/// Delete a product
///
/// A product that still has devices is kept (code 117): delete its devices first.
#[utoipa::path(
    delete,
    path = "/api/v1/products/{id}",
    operation_id = "delete_product",
    tag = "cleanup",
    params(("id" = i64, Path, minimum = 1, example = 1, description = "Product id")),
    responses(
        (status = 200, description = "Deleted", body = Done),
        (status = 400, description = "The product still has devices (117)", body = ErrorBody),
        (status = 401, description = "Not authenticated", body = ErrorBody),
        (status = 404, description = "No such product", body = ErrorBody),
    )
)]
pub async fn delete(
    _: Authenticated,
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Json<Done>, Error> {
    let id = product_id(&id)?;
    state.registry.delete_product(id).await?;
    Ok(Json(Done::OK))
}
