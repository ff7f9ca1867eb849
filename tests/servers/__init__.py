"""The loopback servers the suite talks to: the signature-checking Dysmsapi server,
private redis-server processes, a Redis Cluster, a Sentinel set, a live WSGI server."""
