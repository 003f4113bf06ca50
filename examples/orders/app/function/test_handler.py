import unittest

from handler import handler, price


class PriceTest(unittest.TestCase):
    def test_totals_lines_by_quantity(self):
        self.assertEqual(price([{"sku": "a", "cents": 250, "quantity": 2}, {"sku": "b", "cents": 100}]), 600)

    def test_refuses_a_zero_quantity(self):
        with self.assertRaises(ValueError):
            price([{"sku": "a", "cents": 1, "quantity": 0}])

    def test_handler_reports_its_version(self):
        out = handler({"lines": [{"sku": "a", "cents": 5}]}, None)
        self.assertEqual(out["total_cents"], 5)
        self.assertTrue(out["version"])


if __name__ == "__main__":
    unittest.main()
