output "primary_endpoint_address" {
  description = "Host name of the primary (follows failover)."
  value       = aws_elasticache_replication_group.this.primary_endpoint_address
}

output "port" {
  description = "Redis port."
  value       = aws_elasticache_replication_group.this.port
}

output "node_ids" {
  description = "Cache cluster ids of the nodes (the CacheClusterId dimension of their metrics), known at plan time."
  value       = [for i in range(var.num_cache_clusters) : format("%s-%03d", var.name, i + 1)]
}
