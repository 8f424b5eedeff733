"""Prometheus metrics of the service (``GET /metrics``), one registry per process."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram

REGISTRY = CollectorRegistry(auto_describe=True)

REQUESTS = Counter("policybot_requests", "HTTP requests by route and status", ["route", "status"], registry=REGISTRY)
LATENCY = Histogram("policybot_request_seconds", "HTTP request latency by route", ["route"], registry=REGISTRY,
                    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10))
ANSWERS = Counter("policybot_answers", "Answers by outcome (found, or the refusal reason)", ["outcome"], registry=REGISTRY)
LEXICAL = Counter("policybot_lexical_answers", "Answers decided by BM25 alone (the lexical gate), the question not embedded",
                  registry=REGISTRY)
CACHE_HITS = Counter("policybot_answer_cache_hits", "Answers served from the per-process answer cache", registry=REGISTRY)
LLM_CALLS = Counter("policybot_llm_calls", "Generative answers by what the grounding guard did", ["action"], registry=REGISTRY)
LOG_QUEUE = Gauge("policybot_log_queue_depth", "Question-log rows waiting to be written", registry=REGISTRY)
LOG_WRITTEN = Counter("policybot_log_rows_written", "Question-log and feedback rows written", registry=REGISTRY)
LOG_DROPPED = Counter("policybot_log_rows_dropped", "Question-log rows dropped (queue full or database unavailable)", registry=REGISTRY)
