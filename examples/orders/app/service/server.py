"""orders-api: the order service behind the ECS service `orders-api`. Answers /health and /orders."""

import json
from http.server import BaseHTTPRequestHandler, HTTPServer

VERSION = "1.0.0"
ORDERS = {"1001": {"id": "1001", "status": "shipped"}, "1002": {"id": "1002", "status": "open"}}


def route(path):
    """(status, body) for a GET of `path`."""
    if path == "/health":
        return 200, {"ok": True, "version": VERSION}
    if path.startswith("/orders/"):
        order = ORDERS.get(path.rsplit("/", 1)[-1])
        return (200, order) if order else (404, {"error": "no such order"})
    return 404, {"error": "not found"}


class Handler(BaseHTTPRequestHandler):
    def do_GET(self):
        status, body = route(self.path)
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("content-type", "application/json")
        self.send_header("content-length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)


if __name__ == "__main__":
    HTTPServer(("0.0.0.0", 8080), Handler).serve_forever()
