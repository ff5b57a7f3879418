"""The Kubernetes objects that repeat for every service or follow from the code, as code:
`make manifests` writes them under k8s/base/generated/ and k8s/overlays/prod/generated/, and
`make lint` fails when those files are not what this package writes. What is said once (the
Kafka cluster, the settings, the routes from the gateway, the overlays) is plain YAML beside
them; k8s/README.md maps it all."""
