"""Provider metadata: connection types and their forms, hooks, operators, triggers.

This module imports nothing from Airflow: the providers manager reads it while Airflow itself is
still starting. The connection form fields are declared here (Airflow 3's declarative
``conn-fields``) and the hooks read their extras by these names.
"""

from __future__ import annotations

from typing import Any

from airflow_bgreplace import __version__

_PACKAGE = "airflow_bgreplace"

#: Extras every vendor connection understands.
COMMON_CONN_FIELDS: dict[str, dict[str, Any]] = {
    "timeout_s": {
        "label": "Request timeout (s)",
        "description": "Timeout of one HTTP request to the vendor.",
        "schema": {"type": ["number", "null"], "default": 30},
    },
    "retry_max_attempts": {
        "label": "Retry attempts",
        "description": "Attempts per call on 429, 5xx and connection errors (a submit is never resent "
        "once it may have reached the vendor).",
        "schema": {"type": ["integer", "null"], "default": 5},
    },
    "retry_base_delay_s": {
        "label": "Retry base delay (s)",
        "description": "First backoff delay; doubles per attempt (full jitter) up to 32 s. Retry-After wins.",
        "schema": {"type": ["number", "null"], "default": 1},
    },
    "retry_deadline_s": {
        "label": "Retry deadline (s)",
        "description": "Total time one call may spend in retries.",
        "schema": {"type": ["number", "null"], "default": 120},
    },
    # The URL policy (vendors/url_policy.py) for URLs the provider fetches itself: results, image URLs.
    "allow_http": {
        "label": "Allow plain http URLs",
        "description": "Fetch result and image URLs over plain http too (default: https only; the base "
        "URL's own origin is always allowed).",
        "schema": {"type": ["boolean", "null"], "default": False},
    },
    "allow_private_addresses": {
        "label": "Allow private addresses",
        "description": "Fetch result and image URLs that resolve to private, loopback or link-local "
        "addresses (default: refused, so a URL cannot reach internal services or cloud metadata).",
        "schema": {"type": ["boolean", "null"], "default": False},
    },
    "fetch_timeout_s": {
        "label": "Image URL fetch deadline (s)",
        "description": "Wall-clock bound on reading one image URL the provider fetches itself (connection, "
        "redirects and body together). Result downloads use the operator's download_timeout.",
        "schema": {"type": ["number", "null"], "default": 120},
    },
}

_STAGING_FIELDS: dict[str, dict[str, Any]] = {
    "staging_path": {
        "label": "Staging path",
        "description": "Object storage prefix where local images are published for the vendor, "
        "e.g. s3://my-bucket/bgreplace-inputs",
        "schema": {"type": ["string", "null"]},
    },
    "staging_public_url": {
        "label": "Staging public URL",
        "description": "Public https URL at which the staging path is served, "
        "e.g. https://my-bucket.s3.amazonaws.com/bgreplace-inputs",
        "schema": {"type": ["string", "null"]},
    },
}


def _webhook_token(why: str) -> dict[str, dict[str, Any]]:
    return {
        "webhook_token": {
            "label": "Webhook URL token",
            "description": f"{why}: this secret goes into the callback URL and is compared in constant time "
            "by the receiver.",
            "schema": {"type": ["string", "null"], "format": "password"},
        }
    }


#: Vendor-specific extras, by vendor name.
VENDOR_CONN_FIELDS: dict[str, dict[str, dict[str, Any]]] = {
    "runflow": {
        "webhook_secret": {
            "label": "Callback signing secret(s)",
            "description": "The whsec_... secret from POST /v1/callback-secrets; callbacks must carry its "
            "HMAC-SHA256 in Runflow-Signature. While rotating, give both, separated by a comma.",
            "schema": {"type": ["string", "null"], "format": "password"},
        },
        **_webhook_token("Needed when no signing secret is set"),
        **_STAGING_FIELDS,
    },
    "fashn": _webhook_token("FASHN signs no webhook"),
    "fal": {
        "use_vendor_upload": {
            "label": "Upload local images to fal storage",
            "description": "Upload local images to fal's CDN instead of sending them inline as data URIs.",
            "schema": {"type": ["boolean", "null"], "default": False},
        },
        "rest_base_url": {
            "label": "fal REST URL",
            "description": "Storage host; default https://rest.fal.ai (or the base URL when it is overridden).",
            "schema": {"type": ["string", "null"]},
        },
        "jwks_url": {
            "label": "Webhook JWKS URL",
            "description": "Where the receiver fetches fal's webhook signing keys (cached up to 24 h); default "
            "fal's own, or beside the base URL when that is overridden (the sandbox).",
            "schema": {"type": ["string", "null"]},
        },
        **_STAGING_FIELDS,
    },
    "imagepipeline": {
        "use_vendor_upload": {
            "label": "Upload local images to ImagePipeline",
            "description": "Publish local images through POST /upload/image/v1 (default) instead of the staging path.",
            "schema": {"type": ["boolean", "null"], "default": True},
        },
        **_webhook_token("ImagePipeline signs no webhook"),
        **_STAGING_FIELDS,
    },
}

#: vendor -> (hook class, display name, default base URL)
_CONNECTIONS: dict[str, tuple[str, str, str]] = {
    "runflow": ("RunflowHook", "Background replace: Runflow", "https://api.runflow.io"),
    "fashn": ("FashnHook", "Background replace: FASHN", "https://api.fashn.ai"),
    "fal": ("FalHook", "Background replace: fal.ai", "https://queue.fal.run"),
    "imagepipeline": ("ImagePipelineHook", "Background replace: ImagePipeline", "https://api.imagepipeline.io"),
}


def ui_field_behaviour(default_base_url: str) -> dict[str, Any]:
    return {
        "hidden-fields": ["schema", "port", "login"],
        "relabeling": {"password": "API key", "host": "Base URL (optional override)"},
        "placeholders": {"password": "your API key", "host": default_base_url},
    }


def provider_info() -> dict[str, Any]:
    connection_types = [
        {
            "connection-type": f"bgreplace_{vendor}",
            "hook-class-name": f"{_PACKAGE}.hooks.{vendor}.{hook}",
            "hook-name": name,
            "conn-fields": {**COMMON_CONN_FIELDS, **VENDOR_CONN_FIELDS[vendor]},
            "ui-field-behaviour": ui_field_behaviour(base_url),
        }
        for vendor, (hook, name, base_url) in _CONNECTIONS.items()
    ]
    return {
        "package-name": "airflow-provider-bgreplace",
        "name": "Background replace (Runflow, FASHN, fal.ai, ImagePipeline)",
        "description": "Deferrable operators, triggers, webhook sensors and an offline sandbox for "
        "AI product-photo background APIs.",
        "versions": [__version__],
        "integrations": [{"integration-name": name, "tags": ["ai"]} for _, name, _ in _CONNECTIONS.values()],
        "hooks": [
            {"integration-name": name, "python-modules": [f"{_PACKAGE}.hooks.{vendor}"]}
            for vendor, (_, name, _) in _CONNECTIONS.items()
        ],
        "connection-types": connection_types,
    }
