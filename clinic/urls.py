"""URL map, part of the composition root. Each app owns `urls.py` (its API under /api/v1/)
and, when it has pages for patients or feeds, `public_urls.py` (mounted at the root); the
FHIR resources of every app are mounted here under /fhir/R4/ (FHIR paths: `Patient/12`)."""

from django.contrib import admin
from django.urls import include, path
from rest_framework.routers import SimpleRouter

from clinic.api.schema_views import SchemaDocsView, SchemaView
from clinic.fhir.capability import CapabilityStatementView
from clinic.fhir.resources import FhirPractitionerViewSet
from clinic.health import healthz, readyz
from clinic.observability.metrics import metrics_view
from intake.fhir import FhirQuestionnaireResponseViewSet, FhirQuestionnaireViewSet
from patients.fhir import FhirPatientViewSet
from sessions.fhir.clinical import FhirEncounterViewSet, FhirObservationViewSet, FhirProcedureViewSet
from sessions.fhir.scheduling import FhirAppointmentViewSet, FhirScheduleViewSet, FhirSlotViewSet

admin.site.site_header = "Clinic administration"
admin.site.site_title = "Clinic"
admin.site.index_title = "Front desk and clinical records"

api_v1 = [
    path("", include("clinic.api_urls")),
    path("", include("patients.urls")),
    path("", include("intake.urls")),
    path("", include("treatments.urls")),
    path("", include("sessions.urls")),
    path("", include("outcomes.urls")),
]

fhir = SimpleRouter(trailing_slash=False)
fhir.register("Patient", FhirPatientViewSet, basename="patient")
fhir.register("Practitioner", FhirPractitionerViewSet, basename="practitioner")
fhir.register("Appointment", FhirAppointmentViewSet, basename="appointment")
fhir.register("Encounter", FhirEncounterViewSet, basename="encounter")
fhir.register("Procedure", FhirProcedureViewSet, basename="procedure")
fhir.register("Observation", FhirObservationViewSet, basename="observation")
fhir.register("Schedule", FhirScheduleViewSet, basename="schedule")
fhir.register("Slot", FhirSlotViewSet, basename="slot")
fhir.register("Questionnaire", FhirQuestionnaireViewSet, basename="questionnaire")
fhir.register("QuestionnaireResponse", FhirQuestionnaireResponseViewSet, basename="questionnaireresponse")

# The CapabilityStatement is generated from this registry: registering a resource here declares it.
fhir_urls = [
    path("metadata", CapabilityStatementView.as_view(registry=fhir.registry), name="metadata"),
    *fhir.urls,
]

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("readyz", readyz, name="readyz"),
    path("metrics", metrics_view, name="metrics"),
    path("admin/", admin.site.urls),
    # Public in development; staff or an API key in production (clinic.api.schema_views).
    path("api/schema/", SchemaView.as_view(), name="schema"),
    path("api/docs/", SchemaDocsView.as_view(url_name="schema"), name="api-docs"),
    path("api/v1/", include((api_v1, "api"), namespace="v1")),
    path("", include("clinic.public_urls")),
    path("fhir/R4/", include((fhir_urls, "fhir"), namespace="fhir")),
    path("", include("patients.public_urls")),
    path("", include("intake.public_urls")),
    path("", include("sessions.public_urls")),
    path("", include("outcomes.public_urls")),
]

handler404 = "clinic.api.conventions.not_found"
# A database outage outside an API view (session middleware, admin, pages) is a 503, not a 500.
handler500 = "clinic.degrade.server_error"
