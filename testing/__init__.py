"""Real servers for tests and benchmarks, started on demand: S3 (moto under waitress), GCS
(fake-gcs-server), objectstore (its HTTP protocol) and a latency and fault proxy. The modules
are also pytest plugins (see the top-level ``conftest.py``). Not part of the shipped packages."""
