"""nodeops: the Node.js-in-Docker workflow as Invoke tasks."""

__version__ = "0.1.0"
