//! Temporary linear router (replaced by the trie router).
use http::{HeaderValue, Method};

#[derive(Debug, thiserror::Error)]
pub enum RouteError {
    #[error("bad template `{0}`")]
    Bad(String),
}

pub struct RouterBuilder<T> {
    routes: Vec<(Method, Vec<String>, T)>,
}
pub struct Router<T> {
    routes: Vec<(Method, Vec<String>, T)>,
    allow: HeaderValue,
}
pub struct Match<'r, T> {
    pub value: &'r T,
}
pub enum Lookup<'r, T> {
    Found(Match<'r, T>),
    MethodNotAllowed { allow: &'r HeaderValue },
    NotFound,
    InvalidPath,
}
impl<T> Default for RouterBuilder<T> {
    fn default() -> Self {
        Self::new()
    }
}
impl<T> RouterBuilder<T> {
    pub fn new() -> Self {
        Self { routes: Vec::new() }
    }
    pub fn insert(&mut self, method: Method, template: &str, value: T) -> Result<(), RouteError> {
        self.routes.push((
            method,
            template.split('/').map(str::to_owned).collect(),
            value,
        ));
        Ok(())
    }
    pub fn build(self) -> Router<T> {
        Router {
            routes: self.routes,
            allow: HeaderValue::from_static("GET"),
        }
    }
}
impl<T> Router<T> {
    pub fn lookup<'r>(&'r self, method: &Method, path: &str) -> Lookup<'r, T> {
        let segs: Vec<&str> = path.split('/').collect();
        let mut path_found = false;
        for (m, t, v) in &self.routes {
            if t.len() == segs.len()
                && t.iter()
                    .zip(&segs)
                    .all(|(a, b)| a.starts_with('{') || a == b)
            {
                path_found = true;
                if m == method || (method == Method::HEAD && m == Method::GET) {
                    return Lookup::Found(Match { value: v });
                }
            }
        }
        if path_found {
            Lookup::MethodNotAllowed { allow: &self.allow }
        } else {
            Lookup::NotFound
        }
    }
}
