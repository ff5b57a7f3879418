"""Who may reach what, from the topology the runtime enforces (services/runtime/topology.py):
the topics, each service's Kafka user with ACLs for exactly the topics and consumer groups it
uses, its MongoDB user with its own database only, and the NetworkPolicies of its flows."""

from __future__ import annotations

from collections import defaultdict

from services.devtools.manifests.workloads import (
    GRPC_PORT,
    HTTP_PORT,
    MONGODB_CLIENT,
    PART_OF,
    WORKLOADS,
    Object,
    Workload,
    kafka_user_name,
    labels,
    mongodb_secret,
    selector,
)
from services.runtime.auth import IDENTITY_DATABASE
from services.runtime.settings import Settings
from services.runtime.topology import SERVICES, topic

SETTINGS = Settings()  # the topic, group and database names are the code's defaults
CLUSTER = {"strimzi.io/cluster": "shequn"}
DAY_MS = 24 * 3600 * 1000
MONGODB = "shequn-mongodb"
MONGODB_PODS = {"app": f"{MONGODB}-svc"}  # the label the MongoDB operator gives its pods
BROKER_PODS = {**CLUSTER, "strimzi.io/broker-role": "true"}
BROKER_PORT = 9093  # the TLS listener (k8s/base/kafka.yaml)


def _kafka_topic(name: str, partitions: int, retention_days: int) -> Object:
    return {
        "apiVersion": "kafka.strimzi.io/v1",
        "kind": "KafkaTopic",
        "metadata": {"name": name.replace(".", "-"), "labels": {**CLUSTER, **PART_OF}},
        "spec": {
            "topicName": name,
            "partitions": partitions,
            "replicas": 3,
            "config": {"retention.ms": retention_days * DAY_MS, "min.insync.replicas": 2},
        },
    }


def kafka_topics() -> list[Object]:
    """The four topics (6 partitions: every event of a group on one, in order; 7 days to
    replay from) and each consumer's dead-letter topic (30 days for someone to look)."""
    main = [
        _kafka_topic(topic(SETTINGS, t), 6, 7)
        for t in ("events", "actions", "action_results", "decisions")
    ]
    consumers = [c for flows in SERVICES.values() for c in flows.consumers]
    return main + [_kafka_topic(SETTINGS.dlq_topic(c), 1, 30) for c in consumers]


def kafka_user(service: str) -> Object:
    """Mutual TLS, and ACLs for the topics the service reads and writes and its groups."""
    flows = SERVICES[service]
    operations: defaultdict[str, set[str]] = defaultdict(lambda: {"Describe"})
    for topics in flows.consumers.values():
        for t in topics:
            operations[topic(SETTINGS, t)].add("Read")
    for t in flows.writes:
        operations[topic(SETTINGS, t)].add("Write")
    for consumer in flows.consumers:
        operations[SETTINGS.dlq_topic(consumer)].add("Write")
    order = ["Read", "Write", "Describe"]
    acls = [
        {
            "resource": {"type": "topic", "name": name, "patternType": "literal"},
            "operations": sorted(ops, key=order.index),
        }
        for name, ops in sorted(operations.items())
    ] + [
        {
            "resource": {
                "type": "group",
                "name": SETTINGS.consumer_group(consumer),
                "patternType": "literal",
            },
            "operations": ["Read"],
        }
        for consumer in sorted(flows.consumers)
    ]
    return {
        "apiVersion": "kafka.strimzi.io/v1",
        "kind": "KafkaUser",
        "metadata": {"name": kafka_user_name(service), "labels": {**CLUSTER, **labels(service)}},
        "spec": {
            "authentication": {"type": "tls"},
            "authorization": {"type": "simple", "acls": acls},
        },
    }


def _mongodb_user(name: str, roles: list[tuple[str, str]]) -> Object:
    return {
        "name": name,
        "db": "admin",
        # Made out of band (README "Deploy to a cluster"): nothing secret is committed.
        "passwordSecretRef": {"name": f"{mongodb_secret(name)}-password", "key": "password"},
        "roles": [{"name": role, "db": db} for role, db in roles],
        "scramCredentialsSecretName": f"{name}-scram",
        "connectionStringSecretName": mongodb_secret(name),
    }


def mongodb() -> Object:
    """A replica set of three run by the MongoDB operator, with a user per service that reads
    and writes its own database and reads the identity database (API keys), and a `keys` user
    for the key administration (k8s/tools/keys.yaml)."""
    identity = SETTINGS.database_name(IDENTITY_DATABASE)
    users = [
        _mongodb_user(s, [("readWrite", SETTINGS.database_name(s)), ("read", identity)])
        for s in SERVICES
    ] + [_mongodb_user("keys", [("readWrite", identity)])]
    volume = {"accessModes": ["ReadWriteOnce"]}
    return {
        "apiVersion": "mongodbcommunity.mongodb.com/v1",
        "kind": "MongoDBCommunity",
        "metadata": {"name": MONGODB, "labels": {"app.kubernetes.io/name": "mongodb", **PART_OF}},
        "spec": {
            "members": 3,
            "type": "ReplicaSet",
            "version": "7.0.14",
            "security": {"authentication": {"modes": ["SCRAM"]}},
            "users": users,
            "additionalMongodConfig": {"storage.wiredTiger.engineConfig.journalCompressor": "zlib"},
            "statefulSet": {
                "spec": {
                    "template": {
                        "spec": {
                            "containers": [
                                {
                                    "name": "mongod",
                                    "resources": {
                                        "requests": {"cpu": "500m", "memory": "2Gi"},
                                        "limits": {"memory": "2Gi"},
                                    },
                                },
                                {
                                    "name": "mongodb-agent",
                                    "resources": {
                                        "requests": {"cpu": "50m", "memory": "128Mi"},
                                        "limits": {"memory": "256Mi"},
                                    },
                                },
                            ]
                        }
                    },
                    "volumeClaimTemplates": [
                        {
                            "metadata": {"name": "data-volume"},
                            "spec": {**volume, "resources": {"requests": {"storage": "50Gi"}}},
                        },
                        {
                            "metadata": {"name": "logs-volume"},
                            "spec": {**volume, "resources": {"requests": {"storage": "2Gi"}}},
                        },
                    ],
                }
            },
        },
    }


def _from_namespaces(label: str) -> Object:
    """Peers in the namespaces the platform marks with `label` (README: the gateway's,
    Prometheus's, and those of integrators calling the APIs)."""
    return {"namespaceSelector": {"matchLabels": {label: "true"}}}


def _ports(*ports: int, protocol: str = "TCP") -> list[Object]:
    return [{"protocol": protocol, "port": p} for p in ports]


def network_policy(w: Workload) -> Object:
    """Only the architecture's flows: in, Prometheus to /metrics (on the http port), the
    gateway to the public routes, integrators to the APIs; out, DNS, the brokers, the database,
    and for the services that call platforms or fetch pictures, public addresses."""
    ingress = [
        {"from": [_from_namespaces("shequn.io/monitoring")], "ports": _ports(HTTP_PORT)},
        {
            "from": [_from_namespaces("shequn.io/api-clients")],
            "ports": _ports(HTTP_PORT, GRPC_PORT),
        },
    ]
    if w.public:
        ingress.append(
            {"from": [_from_namespaces("shequn.io/gateway")], "ports": _ports(HTTP_PORT)}
        )
    dns = {
        "namespaceSelector": {"matchLabels": {"kubernetes.io/metadata.name": "kube-system"}},
        "podSelector": {"matchLabels": {"k8s-app": "kube-dns"}},
    }
    egress = [
        {"to": [dns], "ports": _ports(53, protocol="UDP") + _ports(53)},
        {"to": [{"podSelector": {"matchLabels": BROKER_PODS}}], "ports": _ports(BROKER_PORT)},
        {"to": [{"podSelector": {"matchLabels": MONGODB_PODS}}], "ports": _ports(27017)},
    ]
    if w.internet:
        private = [
            "10.0.0.0/8",
            "172.16.0.0/12",
            "192.168.0.0/16",
            "169.254.0.0/16",
            "100.64.0.0/10",
        ]
        egress.append(
            {
                "to": [
                    {"ipBlock": {"cidr": "0.0.0.0/0", "except": private}},
                    {"ipBlock": {"cidr": "::/0", "except": ["fc00::/7", "fe80::/10"]}},
                ],
                "ports": _ports(443, 80),
            }
        )
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": w.name, "labels": labels(w.name)},
        "spec": {
            "podSelector": {"matchLabels": selector(w.name)},
            "policyTypes": ["Ingress", "Egress"],
            "ingress": ingress,
            "egress": egress,
        },
    }


def mongodb_network_policy() -> Object:
    """The database takes connections from the services, the key tool and its own members."""
    return {
        "apiVersion": "networking.k8s.io/v1",
        "kind": "NetworkPolicy",
        "metadata": {"name": "mongodb", "labels": {"app.kubernetes.io/name": "mongodb", **PART_OF}},
        "spec": {
            "podSelector": {"matchLabels": MONGODB_PODS},
            "policyTypes": ["Ingress"],
            "ingress": [
                {
                    "from": [
                        {"podSelector": {"matchLabels": MONGODB_CLIENT}},
                        {"podSelector": {"matchLabels": MONGODB_PODS}},
                    ],
                    "ports": _ports(27017),
                }
            ],
        },
    }


def network_policies() -> list[Object]:
    return [network_policy(w) for w in WORKLOADS] + [mongodb_network_policy()]
