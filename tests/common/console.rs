//! The console over HTTP as a browser would ask: pages as HTML, forms
//! posted with their token.

use super::{Answer, Server};

/// A page, as a browser asks for it.
pub fn get(server: &Server, path: &str, cookie: Option<&str>) -> Answer {
    let mut headers = vec![("accept", "text/html")];
    if let Some(c) = cookie {
        headers.push(("cookie", c));
    }
    server.raw("GET", path, &headers, b"")
}

pub fn post_form(server: &Server, path: &str, cookie: Option<&str>, form: &[(&str, &str)]) -> Answer {
    let body: String = form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
    let mut headers = vec![("content-type", "application/x-www-form-urlencoded")];
    if let Some(c) = cookie {
        headers.push(("cookie", c));
    }
    server.raw("POST", path, &headers, body.as_bytes())
}

/// The hidden form token a page carries.
pub fn csrf_of(page: &str) -> String {
    let at = page.find("name=\"csrf\" value=\"").expect("a form token on the page") + "name=\"csrf\" value=\"".len();
    page[at..].split('"').next().unwrap().to_string()
}
