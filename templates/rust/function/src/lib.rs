use ironfaas_function::{json_string, Request, Response};

/// Called once per request, possibly on several threads at once.
pub fn handle(req: Request) -> Response {
    let name = req
        .query_param("name")
        .unwrap_or_else(|| "world".to_string());
    let body = format!(
        "{{\"hello\":{},\"method\":{},\"path\":{},\"content_type\":{},\"body\":{}}}",
        json_string(&name),
        json_string(&req.method),
        json_string(&req.path),
        req.header("content-type")
            .map_or("null".to_string(), json_string),
        json_string(&req.body_text()),
    );
    Response::json_str(body).with_header("X-Handled-By", "ironfaas-rust")
}
