"""The nodeops benchmark: nodeops against raw docker compose, side by side."""
