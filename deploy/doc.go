// Package deploy holds what ships Easel to production: the Dockerfiles
// (docker/), the ECS task definition templates (ecs/), the Prometheus alert
// rules (prometheus/), the Grafana dashboards (grafana/), the OpenTelemetry
// collector configuration (otel/), the self-hosted Temporal setup (temporal/)
// and the deploy script the GitHub workflows run (scripts/). The Terraform
// that provisions AWS lives in ../terraform and is described in
// ../docs/deploy.md.
//
// The package has no code of its own: its tests check that these files agree
// with each other and with the code. They parse every Terraform file
// (formatting, module inputs, variable, local, resource and module output
// references, template placeholders), the Compose file and the task
// definitions (every environment variable an easel container gets is one
// config.Config reads; secrets never travel as plain environment), the
// GitHub workflows, and the alert rules and dashboards (every metric they
// query is one the Go code exports).
package deploy
