"""Vendor clients: each vendor's HTTP contract, with no Airflow import anywhere below here.

``VENDORS`` maps a vendor name to its contract class; a fifth vendor is one module plus one line.
"""

from __future__ import annotations

from airflow_bgreplace.vendors.base import AsyncVendorClient, Endpoint, VendorApi, VendorClient
from airflow_bgreplace.vendors.errors import (
    AuthenticationError,
    BgReplaceError,
    CancelNotSupportedError,
    DownloadError,
    DownloadTimeoutError,
    DownloadTooLargeError,
    IncompleteResultError,
    InvalidInputError,
    InvalidRequestError,
    JobFailedError,
    NotFoundError,
    PaymentRequiredError,
    RateLimitError,
    ResultExpiredError,
    StagingNotConfiguredError,
    SubmissionUncertainError,
    TransientError,
    UrlNotAllowedError,
    VendorError,
)
from airflow_bgreplace.vendors.fal import FalApi
from airflow_bgreplace.vendors.fashn import FashnApi
from airflow_bgreplace.vendors.imagepipeline import ImagePipelineApi
from airflow_bgreplace.vendors.runflow import RunflowApi
from airflow_bgreplace.vendors.status import JobState, JobStatus, SubmittedJob
from airflow_bgreplace.vendors.url_policy import UrlPolicy

VENDORS: dict[str, type[VendorApi]] = {
    RunflowApi.vendor: RunflowApi,
    FashnApi.vendor: FashnApi,
    FalApi.vendor: FalApi,
    ImagePipelineApi.vendor: ImagePipelineApi,
}

__all__ = [
    "VENDORS",
    "AsyncVendorClient",
    "AuthenticationError",
    "BgReplaceError",
    "CancelNotSupportedError",
    "DownloadError",
    "DownloadTimeoutError",
    "DownloadTooLargeError",
    "Endpoint",
    "FalApi",
    "FashnApi",
    "ImagePipelineApi",
    "IncompleteResultError",
    "InvalidInputError",
    "InvalidRequestError",
    "JobFailedError",
    "JobState",
    "JobStatus",
    "NotFoundError",
    "PaymentRequiredError",
    "RateLimitError",
    "ResultExpiredError",
    "RunflowApi",
    "StagingNotConfiguredError",
    "SubmissionUncertainError",
    "SubmittedJob",
    "TransientError",
    "UrlNotAllowedError",
    "UrlPolicy",
    "VendorApi",
    "VendorClient",
    "VendorError",
]
