"""Serving HTTP in production: gunicorn's arbiter (processes, reload, graceful stop) running waitress in
each worker process (its HTTP parser carries the body gate). See docs/adr/0021-production-server.md."""
