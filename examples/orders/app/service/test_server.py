import unittest

from server import route


class RouteTest(unittest.TestCase):
    def test_health(self):
        self.assertEqual(route("/health")[0], 200)

    def test_known_and_unknown_orders(self):
        self.assertEqual(route("/orders/1001")[1]["status"], "shipped")
        self.assertEqual(route("/orders/9")[0], 404)


if __name__ == "__main__":
    unittest.main()
