"""/fhir/R4/: FHIR style paths (`Patient/12`, no trailing slash)."""

from rest_framework.routers import SimpleRouter

from clinic import fhir

router = SimpleRouter(trailing_slash=False)
router.register("Patient", fhir.FhirPatientViewSet, basename="patient")
router.register("Practitioner", fhir.FhirPractitionerViewSet, basename="practitioner")
router.register("Appointment", fhir.FhirAppointmentViewSet, basename="appointment")

urlpatterns = router.urls
