"""orders-fn: prices an order. Deployed by ferry as a zip, behind the alias `live`."""

VERSION = "1.0.0"


def price(lines):
    """Total of an order's lines, in cents: [{"sku": ..., "cents": ..., "quantity": ...}]."""
    total = 0
    for line in lines:
        quantity = int(line.get("quantity", 1))
        if quantity < 1:
            raise ValueError(f"quantity of {line.get('sku', '?')} must be at least 1")
        total += int(line["cents"]) * quantity
    return total


def handler(event, context):
    lines = event.get("lines", [])
    return {"version": VERSION, "total_cents": price(lines), "lines": len(lines)}
