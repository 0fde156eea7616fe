//! One path and the methods it serves. Any other method gets a 405 problem
//! with `Allow`; HEAD is served wherever GET is, so a path that exists never
//! answers 404 because of its method.

use actix_web::http::Method;
use actix_web::{web, FromRequest, Handler, Resource, Responder, ResponseError};

use crate::problem::Problem;

pub struct Endpoint {
    resource: Resource,
    methods: Vec<Method>,
}

impl Endpoint {
    pub fn new(path: &str) -> Self {
        Self { resource: web::resource(path), methods: Vec::new() }
    }

    /// GET, and HEAD with the same handler (the server sends HEAD no body).
    pub fn get<F, Args>(self, handler: F) -> Self
    where
        F: Handler<Args> + Clone,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.on(Method::GET, handler.clone()).on(Method::HEAD, handler)
    }

    pub fn on<F, Args>(mut self, method: Method, handler: F) -> Self
    where
        F: Handler<Args>,
        Args: FromRequest + 'static,
        F::Output: Responder + 'static,
    {
        self.resource = self.resource.route(web::method(method.clone()).to(handler));
        self.methods.push(method);
        self
    }

    pub fn build(self) -> Resource {
        let allow = self.methods.iter().map(Method::as_str).collect::<Vec<_>>().join(", ");
        self.resource.default_service(web::to(move || {
            let problem = Problem::MethodNotAllowed { allow: allow.clone() };
            async move { problem.error_response() }
        }))
    }
}
