"""PostgreSQL high availability: Patroni + etcd (deploy/pg-ha) under a running node."""
