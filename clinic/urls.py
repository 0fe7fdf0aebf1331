"""URL map. Each app owns `urls.py` (its API under /api/v1/) and, when it has
pages for patients or feeds, `public_urls.py` (mounted at the root)."""

from django.contrib import admin
from django.urls import include, path

from clinic.api.schema_views import SchemaDocsView, SchemaView
from clinic.health import healthz

admin.site.site_header = "Clinic administration"
admin.site.site_title = "Clinic"
admin.site.index_title = "Front desk and clinical records"

api_v1 = [
    path("", include("clinic.api_urls")),
    path("", include("patients.urls")),
    path("", include("intake.urls")),
    path("", include("treatments.urls")),
    path("", include("sessions.urls")),
]

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    # Public in development; staff or an API key in production (clinic.api.schema_views).
    path("api/schema/", SchemaView.as_view(), name="schema"),
    path("api/docs/", SchemaDocsView.as_view(url_name="schema"), name="api-docs"),
    path("api/v1/", include((api_v1, "api"), namespace="v1")),
    path("", include("clinic.public_urls")),
    path("fhir/R4/", include(("clinic.fhir_urls", "fhir"), namespace="fhir")),
    path("", include("intake.public_urls")),
    path("", include("sessions.public_urls")),
]

handler404 = "clinic.api.conventions.not_found"
# A database outage outside an API view (session middleware, admin, pages) is a 503, not a 500.
handler500 = "clinic.degrade.server_error"
