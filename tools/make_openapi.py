#!/usr/bin/env python3
"""Writes Sources/TallyAPI/openapi.json, the OpenAPI 3.1 document Tally serves at /v2/openapi.json.

The document is kept in the repository and served as is; this script is how it is written, so
that the ten analytics endpoints share one definition of their parameters and shapes. Run it after
changing an endpoint: python3 tools/make_openapi.py
"""
import json
import pathlib
import sys

UUID = {"type": "string", "format": "uuid"}
DATE = {"type": "string", "format": "date"}
UUID_LIST = {"type": "string",
             "pattern": "^[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12}"
                        "(,[0-9a-fA-F]{8}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{4}-[0-9a-fA-F]{12})*$"}
ACME = "aa7cf840-9ca9-46a3-9778-9015d6580d50"


def ref(name):
    return {"$ref": f"#/components/schemas/{name}"}


def nullable(schema):
    return {"anyOf": [schema, {"type": "null"}]}


def obj(props, required=None):
    return {"type": "object", "additionalProperties": False, "properties": props,
            "required": list(props) if required is None else required}


METRIC = ref("MetricWithDelta")
SCHEMAS = {
    "MetricWithDelta": obj({"value": {"type": "integer", "minimum": 0},
                            "change_pct": nullable({"type": "number"}),
                            "compare_value": nullable({"type": "integer", "minimum": 0})}),
    "AppRef": obj({"id": UUID, "canonical_name": {"type": "string"}, "logo": nullable({"type": "string"}),
                   "type": {"type": "string"}, "is_favorite": {"type": "boolean"}, "is_approved": {"type": "boolean"}}),
    "DepartmentRef": obj({"id": UUID, "name": {"type": "string"}, "description": nullable({"type": "string"})}),
    "CategoryRef": obj({"id": UUID, "name": {"type": "string"}, "is_ai": {"type": "boolean"}}),
    "VendorRef": obj({"id": UUID, "name": {"type": "string"}}),
    "UserWithDepartments": obj({"id": UUID, "email": {"type": "string"}, "display_name": nullable({"type": "string"}),
                                "departments": {"type": "array", "items": ref("DepartmentRef")}}),
    "Period": obj({"start_date": DATE, "end_date": DATE, "compare_start_date": nullable(DATE),
                   "compare_end_date": nullable(DATE)}),
    "Error": obj({"error": obj({"status": {"type": "integer"}, "code": {"type": "string"},
                                "parameter": nullable({"type": "string"}), "message": {"type": "string"},
                                "rows": {"type": "array", "description": "Refused rows of an appended batch (invalid_events): "
                                                                         "the table (events or a directory table), the row's "
                                                                         "index in it, the field at fault and why.",
                                         "items": obj({"table": {"type": "string", "enum": [
                                                           "events", "users", "apps", "catalog_applications", "departments",
                                                           "user_departments"]},
                                                       "index": {"type": "integer", "minimum": 0},
                                                       "field": {"type": "string"}, "message": {"type": "string"}})}},
                               required=["status", "code", "parameter", "message"])}),
    "UsageLevel": {"type": "string", "enum": ["heavy", "medium", "light"]},
    "AppUtilization": obj({"app": ref("AppRef"), "category": nullable(ref("CategoryRef")),
                           "vendor": nullable(ref("VendorRef")), "unique_users": METRIC, "usage_level": ref("UsageLevel")}),
    "DepartmentUtilization": obj({"department": ref("DepartmentRef"), "user_count": METRIC, "app_count": METRIC}),
    "CategoryUtilization": obj({"category": nullable(ref("CategoryRef")), "user_count": METRIC, "app_count": METRIC}),
    "UserUtilization": obj({"user": ref("UserWithDepartments"), "app_count": METRIC, "active_days": METRIC}),
    "AiAppUsageItem": obj({"app": ref("AppRef"), "user_count": METRIC, "usage_level": ref("UsageLevel")}),
    "AiDepartment": obj({"department": ref("DepartmentRef"), "user_count": METRIC, "approved_user_count": METRIC,
                         "unapproved_user_count": METRIC}),
    "NewAiApp": obj({"app": ref("AppRef"), "first_seen_date": DATE, "unique_users": {"type": "integer", "minimum": 0}}),
    "TrendBucket": obj({"bucket_start": DATE, "bucket_end": DATE, "unique_users": {"type": "integer", "minimum": 0},
                        "app_count": {"type": "integer", "minimum": 0}, "complete": {"type": "boolean"}}),
}


def list_of(item, with_period=True):
    props = {"period": ref("Period")} if with_period else {}
    props.update({"data": {"type": "array", "items": ref(item)}, "total_count": {"type": "integer", "minimum": 0},
                  "next_cursor": nullable({"type": "string"})})
    return obj(props)


SCHEMAS["UtilizationList"] = list_of("AppUtilization")
SCHEMAS["DepartmentUtilizationList"] = list_of("DepartmentUtilization")
SCHEMAS["CategoryUtilizationList"] = list_of("CategoryUtilization")
SCHEMAS["UserUtilizationList"] = list_of("UserUtilization")
SCHEMAS["AiAppUsageList"] = list_of("AiAppUsageItem", with_period=False)
SCHEMAS["AiDepartmentList"] = list_of("AiDepartment")
SCHEMAS["NewAiAppList"] = list_of("NewAiApp")
SCHEMAS["UtilizationSummary"] = obj({"period": ref("Period"), "unique_users": METRIC, "app_count": METRIC,
                                     "approved_app_count": METRIC, "unapproved_app_count": METRIC,
                                     "unapproved_user_count": METRIC})
SCHEMAS["AiUsersSummary"] = obj({"period": ref("Period"), "ai_app_count": METRIC, "ai_user_count": METRIC,
                                 "unapproved_ai_app_count": METRIC, "unapproved_ai_user_count": METRIC,
                                 "ai_user_share_pct": nullable({"type": "number", "minimum": 0, "maximum": 100})})
SCHEMAS["Trend"] = obj({"period": ref("Period"),
                        "granularity": {"type": "string", "enum": ["daily", "weekly", "monthly", "quarterly"]},
                        "series": {"type": "array", "items": ref("TrendBucket")},
                        "compare_series": nullable({"type": "array", "items": ref("TrendBucket")})})


def qp(name, schema, description, required=False, example=None):
    p = {"name": name, "in": "query", "required": required, "schema": schema, "description": description}
    if example is not None:
        p["example"] = example
    return p


FILTERS = {
    "is_approved": qp("is_approved", {"type": "boolean"}, "Only apps with this approval flag."),
    "category_ids": qp("category_ids", UUID_LIST, "Comma-separated catalog category ids; an app matches any. "
                       "Unknown ids match nothing."),
    "vendor_ids": qp("vendor_ids", UUID_LIST, "Comma-separated catalog vendor ids; an app matches any."),
    "app_ids": qp("app_ids", UUID_LIST, "Comma-separated app ids (apps.id)."),
    "department_ids": qp("department_ids", UUID_LIST, "Comma-separated department ids: keeps the usage of users in "
                         "any listed department."),
}

# (path, summary, schema, sort fields (default first), filters, granularity required, comparison, deprecated)
ENDPOINTS = [
    ("utilization", "App utilization: distinct users per app", "UtilizationList",
     ["unique_users", "canonical_name"], ["is_approved", "category_ids", "vendor_ids", "department_ids"], True, True, False),
    ("utilization/departments", "App utilization by department", "DepartmentUtilizationList",
     ["user_count", "app_count", "name"], ["is_approved", "category_ids", "vendor_ids"], True, True, False),
    ("utilization/categories", "App utilization by category", "CategoryUtilizationList",
     ["user_count", "app_count", "name"], ["is_approved", "vendor_ids", "department_ids"], True, True, False),
    ("utilization/users", "App utilization by user", "UserUtilizationList",
     ["app_count", "active_days", "email"], ["is_approved", "category_ids", "vendor_ids", "department_ids"], True, True, False),
    ("utilization/summary", "App utilization summary cards", "UtilizationSummary",
     [], ["is_approved", "category_ids", "vendor_ids", "department_ids"], True, True, False),
    ("ai/users", "AI app users (deprecated: use utilization?category_ids=<AI category>)", "AiAppUsageList",
     ["user_count", "canonical_name"], [], False, True, True),
    ("ai/users/summary", "AI app users summary cards", "AiUsersSummary", [], ["department_ids"], True, True, False),
    ("ai/departments", "AI app users by department", "AiDepartmentList",
     ["user_count", "approved_user_count", "unapproved_user_count", "name"], [], True, True, False),
    ("ai/new", "New AI apps: first seen in the period", "NewAiAppList",
     ["first_seen_date", "unique_users", "canonical_name"], ["is_approved"], True, False, False),
    ("utilization/trend", "Distinct users and apps per calendar bucket", "Trend",
     [], ["is_approved", "category_ids", "vendor_ids", "department_ids", "app_ids"], True, True, False),
]


# SPEC §3b: the directory and insight endpoints.
DATE_OR_NULL = nullable(DATE)
COUNT = {"type": "integer", "minimum": 0}
PCT = nullable({"type": "number", "minimum": 0})
SCHEMAS["UserRow"] = obj({"id": UUID, "email": {"type": "string"}, "display_name": nullable({"type": "string"}),
                          "is_active": {"type": "boolean"}, "role": nullable({"type": "string"}),
                          "created_at": nullable({"type": "string", "format": "date-time"}),
                          "departments": {"type": "array", "items": ref("DepartmentRef")},
                          "first_active_date": DATE_OR_NULL, "last_active_date": DATE_OR_NULL})


def page_of(item, extra=None):
    props = {"as_of": DATE_OR_NULL}
    props.update(extra or {})
    props.update({"data": {"type": "array", "items": item}, "total_count": COUNT,
                  "next_cursor": nullable({"type": "string"})})
    return obj(props)


INTERVAL = {"report_interval": {"type": "string"}}
SCHEMAS["UserList"] = page_of(ref("UserRow"))
SCHEMAS["UserDetail"] = obj({
    "user": ref("UserRow"), "period": nullable(obj({"start_date": DATE, "end_date": DATE})), "active_days": COUNT,
    "app_count": COUNT,
    "apps": {"type": "array", "items": obj({"app": ref("AppRef"), "active_days": COUNT, "first_date": DATE,
                                            "last_date": DATE})},
    "series": nullable({"type": "array", "items": obj({"bucket_start": DATE, "bucket_end": DATE, "active_days": COUNT,
                                                       "app_count": COUNT, "complete": {"type": "boolean"}})})})
SCHEMAS["DepartmentMembersList"] = page_of(obj({"department": ref("DepartmentRef"), "member_count": COUNT,
                                                "active_member_count": COUNT}))
SCHEMAS["DepartmentCard"] = obj({"department": ref("DepartmentRef"), "member_count": COUNT, "period": ref("Period"),
                                 "user_count": METRIC, "app_count": METRIC})
SCHEMAS["ActiveUsers"] = obj({"active_users": COUNT, "window_days": {"type": "integer", "minimum": 1, "maximum": 366},
                              "as_of": DATE_OR_NULL})
SCHEMAS["ChampionList"] = page_of(obj({"user": ref("UserRow"), "num_active_days": COUNT}), INTERVAL)
SCHEMAS["ChurnList"] = page_of(obj({"user": ref("UserRow"), "last_active_date": DATE, "days_inactive": COUNT}), INTERVAL)
SCHEMAS["ReengagementList"] = page_of(obj({"user": ref("UserRow"), "reengaged_on": DATE, "previous_active_date": DATE,
                                           "days_inactive": COUNT}), INTERVAL)
SCHEMAS["License"] = obj({"licensed_seats": nullable(COUNT), "assigned_users": COUNT, "active_users_30d": COUNT,
                          "utilization_pct": PCT, "as_of": DATE_OR_NULL})
SCHEMAS["LicenseUtilization"] = obj({"as_of": DATE_OR_NULL, "data": {"type": "array", "maxItems": 24, "items": obj({
    "month": {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$"}, "active_users": COUNT,
    "licensed_seats": nullable(COUNT), "utilization_pct": PCT, "complete": {"type": "boolean"}})}})
# SPEC §3c: the admin reports over clients.
SCHEMAS["ClientRef"] = obj({"id": UUID, "name": {"type": "string"}})
CLIENT = {"client": ref("ClientRef"), "num_users": COUNT}
SCHEMAS["ClientChurnList"] = page_of(obj({**CLIENT, "last_active_date": DATE}), INTERVAL)
SCHEMAS["ClientReengagementList"] = page_of(obj({**CLIENT, "reengaged_on": DATE, "previous_active_date": DATE}), INTERVAL)
SCHEMAS["ClientGrowthList"] = page_of(obj({**CLIENT, "num_users_added": COUNT, "num_users_removed": COUNT,
                                           "net_growth": {"type": "integer"}}), INTERVAL)
SCHEMAS["Chart"] = obj({"chart_type": {"type": "string", "enum": ["active_users", "active_clients", "new_users"]},
                        "cadence": {"type": "string", "enum": ["daily", "weekly", "monthly"]},
                        "metrics": {"type": "array", "items": obj({"date": DATE, "result": COUNT,
                                                                   "cadence_completed": {"type": "boolean"}})}})


def error_response(text):
    return {"description": text, "content": {"application/json": {"schema": ref("Error")}}}


ERRORS = {
    "400": error_response("A bad parameter: format, a period over 366 days, a single comparison date, a missing "
                          "granularity, an unknown sort_by, a bad page_size or cursor."),
    "401": error_response("No valid bearer token."),
    "403": error_response("The token may not read this client (also when the client does not exist)."),
    "404": error_response("Unknown client (answered only to a token that may read every client)."),
    "429": {"description": "The token is over its quota (requests_per_second in the tokens file).",
            "headers": {"Retry-After": {"description": "Seconds to wait before trying again.",
                                        "schema": {"type": "integer", "minimum": 1}}},
            "content": {"application/json": {"schema": ref("Error")}}},
    "503": error_response("No data is loaded yet."),
}


def operation(path, summary, schema, sorts, filters, needs_granularity, comparison, deprecated):
    params = [
        {"name": "client_id", "in": "path", "required": True, "schema": UUID, "example": ACME,
         "description": "The client organisation."},
        qp("granularity", {"type": "string", "enum": ["daily", "weekly", "monthly", "quarterly"]},
           "Bucket size of time series (calendar-aligned, ISO weeks); validated on tabular endpoints.",
           required=needs_granularity, example="monthly"),
        qp("start_date", DATE, "Start of the period, inclusive (client-local date).", required=True,
           example="2026-02-01"),
        qp("end_date", DATE, "End of the period, inclusive; at most 366 days after start_date.", required=True,
           example="2026-02-28"),
    ]
    if comparison:
        params += [qp("compare_start_date", DATE, "Start of the comparison period; give both comparison dates or "
                      "neither.", example="2026-01-01"),
                   qp("compare_end_date", DATE, "End of the comparison period, inclusive.", example="2026-01-31")]
    params += [FILTERS[f] for f in filters]
    if sorts:
        params += [qp("sort_by", {"type": "string", "enum": sorts}, f"Sort field (default {sorts[0]}); ties break "
                      "by id ascending."),
                   qp("sort_order", {"type": "string", "enum": ["asc", "desc"]},
                      "Default desc for counts and dates, asc for names."),
                   qp("page_size", {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}, "Rows per page."),
                   qp("cursor", {"type": "string"}, "next_cursor of the previous page, with the same parameters.")]
    ok = {"description": "The answer.", "content": {"application/json": {"schema": ref(schema)}}}
    if deprecated:
        ok["headers"] = {
            "Deprecation": {"description": "RFC 9745: the endpoint is deprecated (since the given time).",
                            "schema": {"type": "string"}},
            "Link": {"description": "The successor: utilization filtered to the AI categories.",
                     "schema": {"type": "string"}},
        }
    op = {"operationId": path.replace("/", "_"), "summary": summary, "parameters": params,
          "responses": {"200": ok, **ERRORS}}
    if deprecated:
        op["deprecated"] = True
    return {"get": op}


def simple(summary, schema_or_ref, extra=None):
    responses = {"200": {"description": summary, "content": {"application/json": {"schema": schema_or_ref}}}}
    responses.update(extra or {})
    return {"get": {"summary": summary, "security": [], "responses": responses}}


paths = {
    "/healthz": simple("The process is up.", obj({"status": {"type": "string", "enum": ["ok"]}})),
    "/readyz": simple("Data is loaded.", obj({"status": {"type": "string", "enum": ["ready"]},
                                              "clients": {"type": "integer", "minimum": 0},
                                              "usage_rows": {"type": "integer", "minimum": 0},
                                              "acked_sequence": {"type": "integer", "minimum": 0,
                                                                 "description": "The newest append acknowledged (its write-ahead-log "
                                                                                "sequence); 0 if none since the log began."},
                                              "acked_at": {"type": ["string", "null"], "format": "date-time",
                                                           "description": "When it was acknowledged; null if not by this process "
                                                                          "(recovered from the log at start, or none)."},
                                              "delta_rows": {"type": "integer", "minimum": 0,
                                                             "description": "Usage rows appended into tails beside the clients' indexes "
                                                                            "and not yet merged into them (answers are exact either way)."},
                                              "oldest_delta_age_seconds": {"type": "number", "minimum": 0,
                                                                           "description": "Seconds since the oldest of those tails began; "
                                                                                          "0 if there is none."}}),
                      {"503": ERRORS["503"]}),
    "/v2/openapi.json": simple("This document.", {"type": "object"}),
    "/": {"get": {"summary": "The console: one self-contained HTML page (service figures, live request rates and "
                             "latency, a client's App Usage Dashboard). No token for the page itself.",
                  "security": [], "responses": {"200": {"description": "The page.",
                                                        "content": {"text/html": {"schema": {"type": "string"}}}}}}},
    "/metrics": {"get": {"summary": "Prometheus text exposition (SPEC §3d); loopback and --metrics-peer addresses only.",
                         "security": [],
                         "responses": {"200": {"description": "The metrics.",
                                               "content": {"text/plain": {"schema": {"type": "string"}}}},
                                       "403": ERRORS["403"], "404": ERRORS["404"]}}},
    "/v2/status": {"get": {"summary": "The service's own figures for the console: version, uptime, data source, "
                                      "clients, rows, bytes, last reload, the clients the token may read, and the "
                                      "request counters and latency histograms of /metrics. Any valid token.",
                           "responses": {"200": {"description": "Service status.", "content": {"application/json": {
                               "schema": obj({
                                   "version": {"type": "string"}, "started_at": {"type": "string"},
                                   "uptime_seconds": {"type": "number"}, "ready": {"type": "boolean"},
                                   "data_source": {"type": ["string", "null"]},
                                   "clients": {"type": "integer"}, "usage_rows": {"type": "integer"},
                                   "store_bytes": {"type": "integer"}, "resident_bytes": {"type": "integer"},
                                   "last_reload": {"type": ["object", "null"]},
                                   "client_list": {"type": "array", "items": {"type": "object"}},
                                   "client_list_truncated": {"type": "boolean"},
                                   "requests": {"type": ["object", "null"]}})}}},
                                         "401": ERRORS["401"]}}},
}
for e in ENDPOINTS:
    paths[f"/v2/clients/{{client_id}}/analytics/apps/{e[0]}"] = operation(*e)
CLIENT_ID = {"name": "client_id", "in": "path", "required": True, "schema": UUID, "example": ACME,
             "description": "The client organisation."}
AS_OF = qp("as_of", DATE, "The day the report is taken on; default the newest activity date (the client's, or "
           "the store's for admin reports). Activity after it is ignored.")
ACTIVITY = [qp("app_ids", UUID_LIST, "Only activity of these apps (apps.id)."),
            qp("category_ids", UUID_LIST, "Only activity of apps in these catalog categories."),
            qp("is_approved", {"type": "boolean"}, "Only activity of apps with this approval flag.")]
PAGE = [qp("page_size", {"type": "integer", "minimum": 1, "maximum": 200, "default": 50}, "Rows per page."),
        qp("cursor", {"type": "string"}, "next_cursor of the previous page, with the same parameters.")]


def sorting(sorts):
    return [qp("sort_by", {"type": "string", "enum": sorts}, f"Sort field (default {sorts[0]}); ties break by id "
               "ascending."),
            qp("sort_order", {"type": "string", "enum": ["asc", "desc"]}, "Default asc for names and emails, desc "
               "otherwise.")] + PAGE


def interval(values):
    return qp("report_interval", {"type": "string", "enum": values}, "The window: " + ", ".join(values) + ".",
              required=True, example=values[0])


def get(op_id, summary, schema, params, errors=("400", "401", "403", "404", "429", "503"), admin=False):
    responses = {"200": {"description": "The answer.", "content": {"application/json": {"schema": ref(schema)}}}}
    for code in errors:
        responses[code] = ERRORS[code]
    if admin:
        responses["403"] = error_response("The token may not read every client.")
        responses["404"] = error_response("No such chart.")
    return {"get": {"operationId": op_id, "summary": summary, "parameters": params, "responses": responses}}


NOT_FOUND_ENTITY = "Unknown client (to a token that may read every client), or a {} id that is not the client's."
C = "/v2/clients/{client_id}/"
paths[C + "users"] = get("users", "K. The client's users, filtered and paged", "UserList", [
    CLIENT_ID, qp("q", {"type": "string", "minLength": 1, "maxLength": 100},
                  "Case-insensitive substring of email or display_name (1–100 characters)."),
    qp("department_id", UUID, "Only members of this department (an unknown one matches nobody)."),
    qp("has_department", {"type": "boolean"}, "true: in at least one department; false: in none."),
    qp("is_active", {"type": "boolean"}, "Only users with this is_active flag."),
    qp("role", {"type": "string"}, "Only users with exactly this role."), AS_OF,
] + sorting(["email", "display_name", "created_at", "last_active_date"]))
paths[C + "users/{user_id}"] = get("user", "L. One user's activity per app and per bucket", "UserDetail", [
    CLIENT_ID, {"name": "user_id", "in": "path", "required": True, "schema": UUID, "description": "The user."},
    qp("start_date", DATE, "Start of the period (with end_date); default the 30 days ending on as_of."),
    qp("end_date", DATE, "End of the period, inclusive; at most 366 days."),
    qp("granularity", {"type": "string", "enum": ["daily", "weekly", "monthly", "quarterly"]},
       "Adds the series of calendar buckets."), AS_OF])
paths[C + "users/{user_id}"]["get"]["responses"]["404"] = error_response(NOT_FOUND_ENTITY.format("user"))
paths[C + "departments"] = get("departments", "M1. Every department with its members and active members",
                               "DepartmentMembersList", [CLIENT_ID, AS_OF] + sorting(["name", "member_count",
                                                                                      "active_member_count"]))
dep = operation("utilization/departments", "", "", [], ["is_approved", "category_ids", "vendor_ids"], True, True, False)
paths[C + "departments/{department_id}"] = get("department", "M2. B's figures for one department", "DepartmentCard", [
    CLIENT_ID, {"name": "department_id", "in": "path", "required": True, "schema": UUID, "description": "The department."},
] + [p for p in dep["get"]["parameters"] if p["name"] != "client_id"])
paths[C + "departments/{department_id}"]["get"]["responses"]["404"] = error_response(NOT_FOUND_ENTITY.format("department"))
paths[C + "usage-statistics/active-users"] = get("active_users", "N. Distinct users active in the last window_days",
                                                 "ActiveUsers", [
    CLIENT_ID, qp("window_days", {"type": "integer", "minimum": 1, "maximum": 366, "default": 30},
                  "The window, in days, ending on as_of."), AS_OF])
paths[C + "analytics/users/champions"] = get("champions", "O. Users by distinct active days in the window",
                                             "ChampionList", [CLIENT_ID, interval(["30", "60", "90"])] + ACTIVITY
                                             + [AS_OF] + sorting(["num_active_days"]))
paths[C + "analytics/users/churn"] = get("churn", "P. Users active before the window and not in it", "ChurnList",
                                         [CLIENT_ID, interval(["7", "14", "30"])] + ACTIVITY + [AS_OF]
                                         + sorting(["last_active_date", "days_inactive"]))
paths[C + "analytics/users/reengagement"] = get("reengagement", "Q. Users back after a silent window",
                                                "ReengagementList", [CLIENT_ID, interval(["weekly", "monthly"])]
                                                + ACTIVITY + [AS_OF] + sorting(["days_inactive", "reengaged_on"]))
paths[C + "license"] = get("license", "R1. Licensed seats and their use", "License", [CLIENT_ID, AS_OF])
paths[C + "license/utilization"] = get("license_utilization", "R2. Active users and seat use per calendar month",
                                       "LicenseUtilization", [
    CLIENT_ID, qp("start_month", {"type": "string", "pattern": "^[0-9]{4}-[0-9]{2}$"},
                  "First month (YYYY-MM), at most 23 months before as_of's; default 11 months before."), AS_OF])
ADMIN_AS_OF = qp("as_of", DATE, "The day the report is taken on; default the store's newest activity date.")
for kind, values, schema in [("churn", ["7", "14", "30"], "ClientChurnList"),
                             ("reengagement", ["weekly", "monthly"], "ClientReengagementList"),
                             ("growth", ["30", "60", "90"], "ClientGrowthList"),
                             ("attrition", ["30", "60", "90"], "ClientGrowthList")]:
    paths[f"/v2/analytics/clients/{kind}"] = get(f"clients_{kind}", f"Admin report: client {kind}", schema,
                                                 [interval(values), ADMIN_AS_OF] + PAGE,
                                                 errors=("400", "401", "403", "429", "503"), admin=True)
    del paths[f"/v2/analytics/clients/{kind}"]["get"]["responses"]["404"]
paths["/v2/analytics/charts/{chart_type}"] = get("chart", "Admin chart metrics per calendar bucket", "Chart", [
    {"name": "chart_type", "in": "path", "required": True,
     "schema": {"type": "string", "enum": ["active_users", "active_clients", "new_users"]}, "description": "The chart."},
    qp("cadence", {"type": "string", "enum": ["daily", "weekly", "monthly"]}, "Bucket size.", required=True,
       example="monthly"),
    qp("start_date", DATE, "Start of the period, inclusive.", required=True, example="2026-01-01"),
    qp("end_date", DATE, "End of the period, inclusive; at most 366 days.", required=True, example="2026-03-15"),
], errors=("400", "401", "403", "429", "503"), admin=True)
paths["/v2/admin/reload"] = {"post": {
    "operationId": "admin_reload",
    "summary": "Load a dump beside the served data and swap it in at once (zero downtime). Needs a token that "
               "may read every client. Answers once the new data is served.",
    "requestBody": {"required": False, "content": {"application/json": {"schema": {
        "type": "object", "additionalProperties": False,
        "maxProperties": 1,
        "properties": {"dump": {"type": "string", "minLength": 1,
                                "description": "Dump folder to load; default: what the server started with."},
                       "snapshot": {"type": "string", "minLength": 1,
                                    "description": "Native snapshot file to load (tally snapshot save)."}}}}}},
    "responses": {
        "200": {"description": "The new data is served.", "content": {"application/json": {"schema": obj({
            "status": {"type": "string", "enum": ["reloaded"]}, "source": {"type": "string"},
            "clients": {"type": "integer", "minimum": 0}, "usage_rows": {"type": "integer", "minimum": 0},
            "seconds": {"type": "number", "minimum": 0}})}}},
        "400": error_response("The body is not {}, {\"dump\": \"<folder>\"} or {\"snapshot\": \"<file>\"}."),
        "401": ERRORS["401"],
        "403": error_response("The token may not read every client."),
        "404": error_response("The server was started without a source to reload from."),
        "409": error_response("Another reload is running."),
        "422": error_response("The load failed (the message names file, line and column); the data loaded before "
                              "is still served."),
    }}}
paths["/v2/admin/snapshot"] = {"post": {
    "operationId": "admin_snapshot",
    "summary": "Write the served data as a native snapshot file (and drop the write-ahead-log records it now "
               "holds). Needs a token that may read every client.",
    "requestBody": {"required": True, "content": {"application/json": {"schema": obj(
        {"path": {"type": "string", "minLength": 1, "description": "File to write (replaced atomically)."}})}}},
    "responses": {
        "200": {"description": "Written.", "content": {"application/json": {"schema": obj({
            "status": {"type": "string", "enum": ["saved"]}, "path": {"type": "string"},
            "bytes": {"type": "integer", "minimum": 0}, "usage_rows": {"type": "integer", "minimum": 0},
            "seconds": {"type": "number", "minimum": 0}})}}},
        "400": error_response("The body is not {\"path\": \"<file>\"}."),
        "401": ERRORS["401"],
        "403": error_response("The token may not read every client."),
        "422": error_response("The file could not be written."),
        "503": ERRORS["503"],
    }}}
EVENT = obj({"user_id": UUID, "application_id": UUID, "activity_date": DATE})
OPTIONAL_TEXT = nullable({"type": "string"})
DIRECTORY_TABLES = {
    "users": obj({"id": UUID, "client_id": nullable(UUID), "email": {"type": "string", "minLength": 1},
                  "display_name": OPTIONAL_TEXT, "is_active": {"type": "boolean"}, "role": OPTIONAL_TEXT,
                  "created_at": nullable({"type": "string", "description": "ISO 8601 or YYYY-MM-DD HH:MM:SS[.f][±HH[:MM]]"})},
                 required=["id", "email", "is_active"]),
    "apps": obj({"id": UUID, "client_id": nullable(UUID), "catalog_application_id": UUID, "is_approved": {"type": "boolean"},
                 "is_favorite": {"type": "boolean"}}, required=["id", "catalog_application_id", "is_approved", "is_favorite"]),
    "catalog_applications": obj({"id": UUID, "canonical_name": {"type": "string", "minLength": 1}, "logo": OPTIONAL_TEXT,
                                 "type": {"type": "string", "minLength": 1}, "category_id": nullable(UUID),
                                 "vendor_id": nullable(UUID)}, required=["id", "canonical_name", "type"]),
    "departments": obj({"id": UUID, "client_id": nullable(UUID), "name": {"type": "string", "minLength": 1},
                        "description": OPTIONAL_TEXT}, required=["id", "name"]),
    "user_departments": obj({"user_id": UUID, "department_id": UUID}),
}
paths["/v2/clients/{client_id}/usage-events"] = {"post": {
    "operationId": "usage_events",
    "summary": "Append usage events, and new or changed users, apps, catalog applications, departments and "
               "memberships (upserts by id): acknowledged once durable in the write-ahead log and visible to the next "
               "query. A batch with any refused row is refused whole, every refused row listed.",
    "parameters": [{"name": "client_id", "in": "path", "required": True, "schema": UUID, "example": ACME,
                    "description": "The client organisation."}],
    "requestBody": {"required": True, "content": {"application/json": {"schema": {"oneOf": [
        {**obj({"events": {"type": "array", "maxItems": 10000, "items": EVENT},
                **{name: {"type": "array", "items": row} for name, row in DIRECTORY_TABLES.items()}}, required=[]),
         "minProperties": 1},
        {"type": "array", "minItems": 1, "maxItems": 10000, "items": EVENT}]}}}},
    "responses": {
        "200": {"description": "Durable and visible.", "content": {"application/json": {"schema": obj({
            "accepted": {"type": "integer", "minimum": 0}, "directory_rows": {"type": "integer", "minimum": 0},
            "sequence": {"type": "integer", "minimum": 1}})}}},
        "400": error_response("Refused: the error lists each refused row's table, index, field and reason in rows; "
                              "nothing of the batch was applied."),
        "401": ERRORS["401"],
        "403": ERRORS["403"],
        "404": error_response("Unknown client (to a token that may read every client), or the server runs without "
                              "a write-ahead log (--wal)."),
        "409": error_response("data_changed: a reload replaced the data between the batch's check and its commit, "
                              "and the new data lacks something the batch names; nothing was applied."),
        "413": error_response("The body is over 1 MiB."),
        "503": error_response("No data is loaded yet (`not_ready`), the batch could not be made durable (`not_durable`), "
                              "the server is shutting down (`shutting_down`), or the client's rows of its newest day are ahead of "
                              "its merge, or a batch with catalog rows arrived while the client is rebuilt with earlier batches "
                              "(`merge_behind`, with `Retry-After: 1`): nothing of the batch was applied. A batch waiting for its "
                              "client's rebuild when the server stops is answered `shutting_down` but is in the log, and is served "
                              "after the restart."),
    }}}

doc = {
    "openapi": "3.1.0",
    "info": {"title": "Tally", "version": "2.0.0",
             "description": "Exact app-usage analytics (SPEC §3). All counts are COUNT DISTINCT over the usage rows "
                            "in the period after the filters; see the repository's docs/API.md."},
    "servers": [{"url": "http://127.0.0.1:8080"}],
    "security": [{"bearerAuth": []}],
    "paths": paths,
    "components": {"schemas": SCHEMAS,
                   "securitySchemes": {"bearerAuth": {"type": "http", "scheme": "bearer",
                                                      "description": "On loopback without a tokens file, the demo "
                                                                     "token YOUR_API_TOKEN reads every client."}}},
}
out = pathlib.Path(__file__).resolve().parent.parent / "Sources/TallyAPI/openapi.json"
text = json.dumps(doc, indent=1) + "\n"
if "--check" in sys.argv:
    if out.read_text() != text:
        sys.exit(f"{out} is out of date: run python3 tools/make_openapi.py")
    print(f"{out} is up to date")
else:
    out.write_text(text)
    print(f"wrote {out}")
