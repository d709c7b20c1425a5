//! The route table. mica answers `GET /api/v1/endpoints` with its routes in a fixed
//! order that no map of paths keeps, so resources add their routes through [`Routes`],
//! which keeps the order next to the axum router and the OpenAPI operations (both
//! taken from each handler's `#[utoipa::path]` annotation by `utoipa_axum::routes!`).

use std::sync::Arc;

use utoipa_axum::router::{OpenApiRouter, UtoipaMethodRouter};

use crate::state::{App, Route};

/// Routes, their order, and their OpenAPI operations.
pub struct Routes {
    router: OpenApiRouter<App>,
    order: Vec<Route>,
}

impl Routes {
    pub fn new() -> Routes {
        Routes {
            router: OpenApiRouter::default(),
            order: Vec::new(),
        }
    }

    /// Adds one handler (`routes!(handler)`) after those already added.
    pub fn route(mut self, route: UtoipaMethodRouter<App>) -> Routes {
        for (path, item) in &route.1.paths {
            // mica's routes are GET or POST, one method each.
            let method = if item.post.is_some() { "POST" } else { "GET" };
            self.order.push(Route {
                method,
                path: path.clone(),
            });
        }
        self.router = self.router.routes(route);
        self
    }

    /// Adds another resource's routes after these.
    pub fn merge(mut self, other: Routes) -> Routes {
        self.order.extend(other.order);
        self.router = self.router.merge(other.router);
        self
    }

    /// The axum router (state still to apply), the route list in order, and the
    /// OpenAPI operations.
    pub fn into_parts(self) -> (axum::Router<App>, Arc<[Route]>, utoipa::openapi::OpenApi) {
        let (router, operations) = self.router.split_for_parts();
        (router, self.order.into(), operations)
    }
}

impl Default for Routes {
    fn default() -> Self {
        Routes::new()
    }
}
