module github.com/fluxwatch/fluxwatch

go 1.26.0

require (
	github.com/miekg/dns v1.1.73
	go.etcd.io/bbolt v1.5.0
)

require (
	github.com/robfig/cron/v3 v3.0.1 // indirect
	go.yaml.in/yaml/v3 v3.0.6 // indirect
	golang.org/x/net v0.62.0 // indirect
	golang.org/x/sys v0.49.0 // indirect
	golang.org/x/text v0.43.0 // indirect
	golang.org/x/time v0.16.0 // indirect
)
