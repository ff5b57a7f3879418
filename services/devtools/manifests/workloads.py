"""The five services' workloads: a ServiceAccount, Deployment, Service and PodDisruptionBudget
each; in production an autoscaler and a spread over nodes and zones."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from services.runtime.settings import Settings

Object = dict[str, Any]

PART_OF = {"app.kubernetes.io/part-of": "shequn"}
# Pods that may reach the brokers (Strimzi's listener NetworkPolicy) and the database.
KAFKA_CLIENT = {"shequn.io/kafka-client": "true"}
MONGODB_CLIENT = {"shequn.io/mongodb-client": "true"}
IMAGE = "shequn"  # overlays set the registry and tag (kustomize `images`)
HTTP_PORT, GRPC_PORT = 8080, 50051
SECRETS_DIR = "/var/run/secrets/shequn"  # SHEQUN_SECRETS_DIR: one file per secret setting
KAFKA_TLS_DIR = "/etc/shequn/kafka"
# After SIGTERM: the pod leaves the Service's endpoints while preStop waits, then the runner
# gives its consumers SHEQUN_SHUTDOWN_SECONDS to finish and commit; the rest closes the clients.
PRE_STOP_SECONDS = 5
SHUTDOWN_SECONDS = Settings().shutdown_seconds
CLOSING_SECONDS = 10
GRACE_SECONDS = int(PRE_STOP_SECONDS + SHUTDOWN_SECONDS + CLOSING_SECONDS)


@dataclass(frozen=True)
class Workload:
    name: str
    cpu: str  # requested; the limit is 4 times that
    memory: str  # requested
    memory_limit: str
    autoscale: tuple[int, int]  # production replicas: fewest, most
    public: bool = False  # the gateway routes some of its paths (k8s/base/routes.yaml)
    internet: bool = False  # calls platform APIs or fetches pictures
    credentials: bool = False  # encrypts platform credentials: gets SHEQUN_SECRETS_KEY


# Consumers scale with the topics' partitions (6): replicas beyond that idle as consumers and
# only serve HTTP and gRPC.
WORKLOADS = (
    Workload(
        "ingestion", "250m", "384Mi", "1Gi", (2, 6), public=True, internet=True, credentials=True
    ),
    Workload("moderation", "250m", "384Mi", "1Gi", (2, 6), internet=True),
    Workload("engagement", "200m", "384Mi", "1Gi", (2, 6)),
    Workload("campaign", "200m", "384Mi", "1Gi", (2, 6), public=True),
    Workload("analytics", "200m", "512Mi", "1536Mi", (2, 4)),
)


def selector(name: str) -> dict[str, str]:
    return {"app.kubernetes.io/name": name, **PART_OF}


def labels(name: str) -> dict[str, str]:
    return {**selector(name), "app.kubernetes.io/component": "microservice"}


def kafka_user_name(name: str) -> str:
    """The service's KafkaUser, and the Secret with its certificate that Strimzi makes."""
    return f"shequn-{name}"


def mongodb_secret(name: str) -> str:
    """The Secret with the service's connection string, made by the MongoDB operator."""
    return f"shequn-mongodb-{name}"


def _meta(name: str, **extra: Any) -> Object:
    return {"name": name, "labels": labels(name), **extra}


def service_account(w: Workload) -> Object:
    # No token: the services never call the Kubernetes API.
    return {
        "apiVersion": "v1",
        "kind": "ServiceAccount",
        "metadata": _meta(w.name),
        "automountServiceAccountToken": False,
    }


def _probe(path: str, period: int, failures: int) -> Object:
    return {
        "httpGet": {"path": path, "port": "http"},
        "periodSeconds": period,
        "timeoutSeconds": 3,
        "failureThreshold": failures,
    }


def _volumes(w: Workload) -> list[Object]:
    settings = [
        {
            "secret": {
                "name": mongodb_secret(w.name),
                "items": [{"key": "connectionString.standard", "path": "SHEQUN_MONGO_URL"}],
            }
        }
    ]
    if w.credentials:
        settings.append(
            {
                "secret": {
                    "name": "shequn-secrets-key",
                    "items": [{"key": "secrets-key", "path": "SHEQUN_SECRETS_KEY"}],
                }
            }
        )
    kafka = [
        {
            "secret": {
                "name": "shequn-cluster-ca-cert",
                "items": [{"key": "ca.crt", "path": "ca.crt"}],
            }
        },
        {
            "secret": {
                "name": kafka_user_name(w.name),
                "items": [
                    {"key": "user.crt", "path": "user.crt"},
                    {"key": "user.key", "path": "user.key"},
                ],
            }
        },
    ]
    return [
        {"name": "settings", "projected": {"defaultMode": 0o440, "sources": settings}},
        {"name": "kafka-tls", "projected": {"defaultMode": 0o440, "sources": kafka}},
        {"name": "tmp", "emptyDir": {"sizeLimit": "64Mi"}},
    ]


def _env() -> list[Object]:
    values = {
        "SHEQUN_SECRETS_DIR": SECRETS_DIR,
        "SHEQUN_KAFKA_SECURITY_PROTOCOL": "SSL",
        "SHEQUN_KAFKA_SSL_CAFILE": f"{KAFKA_TLS_DIR}/ca.crt",
        "SHEQUN_KAFKA_SSL_CERTFILE": f"{KAFKA_TLS_DIR}/user.crt",
        "SHEQUN_KAFKA_SSL_KEYFILE": f"{KAFKA_TLS_DIR}/user.key",
        # Strimzi's topic operator owns the topics (generated/kafka-topics.yaml).
        "SHEQUN_KAFKA_CREATE_TOPICS": "false",
        "SHEQUN_SHUTDOWN_SECONDS": f"{SHUTDOWN_SECONDS:g}",
        "SHEQUN_HTTP_PORT": str(HTTP_PORT),
        "SHEQUN_GRPC_PORT": str(GRPC_PORT),
    }
    return [{"name": k, "value": v} for k, v in values.items()]


def deployment(w: Workload) -> Object:
    container = {
        "name": w.name,
        "image": IMAGE,
        "imagePullPolicy": "Always",
        "command": ["python", "-m", f"services.{w.name}"],
        "envFrom": [{"configMapRef": {"name": "shequn-config"}}],
        "env": _env(),
        "ports": [
            {"name": "http", "containerPort": HTTP_PORT},
            {"name": "grpc", "containerPort": GRPC_PORT},
        ],
        # Indexes and the topics' check come before the HTTP server: up to 2 minutes.
        "startupProbe": _probe("/healthz", 2, 60),
        # Not ready (Kafka, MongoDB or a consumer away): out of the Service, not restarted.
        "readinessProbe": _probe("/readyz", 5, 3),
        "livenessProbe": _probe("/healthz", 10, 3),
        "lifecycle": {"preStop": {"exec": {"command": ["sleep", str(PRE_STOP_SECONDS)]}}},
        "resources": {
            "requests": {"cpu": w.cpu, "memory": w.memory},
            "limits": {"cpu": f"{int(w.cpu.rstrip('m')) * 4}m", "memory": w.memory_limit},
        },
        "securityContext": {
            "allowPrivilegeEscalation": False,
            "privileged": False,
            "readOnlyRootFilesystem": True,
            "capabilities": {"drop": ["ALL"]},
        },
        "volumeMounts": [
            {"name": "settings", "mountPath": SECRETS_DIR, "readOnly": True},
            {"name": "kafka-tls", "mountPath": KAFKA_TLS_DIR, "readOnly": True},
            {"name": "tmp", "mountPath": "/tmp"},
        ],
    }
    pod = {
        "serviceAccountName": w.name,
        "automountServiceAccountToken": False,
        "terminationGracePeriodSeconds": GRACE_SECONDS,
        "securityContext": {
            "runAsNonRoot": True,
            "runAsUser": 10001,
            "runAsGroup": 10001,
            "fsGroup": 10001,
            "seccompProfile": {"type": "RuntimeDefault"},
        },
        "containers": [container],
        "volumes": _volumes(w),
    }
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(w.name),
        "spec": {
            "replicas": 1,
            "revisionHistoryLimit": 5,
            "selector": {"matchLabels": selector(w.name)},
            # A new pod is ready before an old one goes: intake never stops.
            "strategy": {
                "type": "RollingUpdate",
                "rollingUpdate": {"maxSurge": 1, "maxUnavailable": 0},
            },
            "template": {
                "metadata": {"labels": {**labels(w.name), **KAFKA_CLIENT, **MONGODB_CLIENT}},
                "spec": pod,
            },
        },
    }


def service(w: Workload) -> Object:
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(w.name),
        "spec": {
            "type": "ClusterIP",
            "selector": selector(w.name),
            "ports": [
                {"name": "http", "port": HTTP_PORT, "targetPort": "http", "appProtocol": "http"},
                # gRPC over plain HTTP/2, with health checking and reflection.
                {"name": "grpc", "port": GRPC_PORT, "targetPort": "grpc", "appProtocol": "grpc"},
            ],
        },
    }


def disruption_budget(w: Workload) -> Object:
    # One pod at a time: a drain waits for the last one evicted to finish its batch.
    return {
        "apiVersion": "policy/v1",
        "kind": "PodDisruptionBudget",
        "metadata": _meta(w.name),
        "spec": {"maxUnavailable": 1, "selector": {"matchLabels": selector(w.name)}},
    }


def autoscaler(w: Workload) -> Object:
    fewest, most = w.autoscale
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _meta(w.name),
        "spec": {
            "scaleTargetRef": {"apiVersion": "apps/v1", "kind": "Deployment", "name": w.name},
            "minReplicas": fewest,
            "maxReplicas": most,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {"type": "Utilization", "averageUtilization": 70},
                    },
                }
            ],
            # Each change of replicas rebalances the consumer groups: change slowly.
            "behavior": {
                "scaleUp": {
                    "stabilizationWindowSeconds": 60,
                    "policies": [{"type": "Pods", "value": 2, "periodSeconds": 60}],
                },
                "scaleDown": {
                    "stabilizationWindowSeconds": 300,
                    "policies": [{"type": "Pods", "value": 1, "periodSeconds": 120}],
                },
            },
        },
    }


def spread(w: Workload) -> Object:
    """A patch: the service's pods on different nodes where it can, and across zones."""
    match = {"labelSelector": {"matchLabels": selector(w.name)}}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": w.name},
        "spec": {
            "template": {
                "spec": {
                    "affinity": {
                        "podAntiAffinity": {
                            "preferredDuringSchedulingIgnoredDuringExecution": [
                                {
                                    "weight": 100,
                                    "podAffinityTerm": {
                                        "topologyKey": "kubernetes.io/hostname",
                                        **match,
                                    },
                                },
                            ]
                        }
                    },
                    "topologySpreadConstraints": [
                        {
                            "maxSkew": 1,
                            "topologyKey": "topology.kubernetes.io/zone",
                            "whenUnsatisfiable": "ScheduleAnyway",
                            **match,
                        },
                    ],
                }
            }
        },
    }
