"""/fhir/R4/: FHIR style paths (`Patient/12`, no trailing slash)."""

from rest_framework.routers import SimpleRouter

from clinic.fhir import base as fhir
from intake import fhir as intake_fhir
from sessions import fhir as sessions_fhir

router = SimpleRouter(trailing_slash=False)
router.register("Patient", fhir.FhirPatientViewSet, basename="patient")
router.register("Practitioner", fhir.FhirPractitionerViewSet, basename="practitioner")
router.register("Appointment", fhir.FhirAppointmentViewSet, basename="appointment")
router.register("Encounter", sessions_fhir.FhirEncounterViewSet, basename="encounter")
router.register("Procedure", sessions_fhir.FhirProcedureViewSet, basename="procedure")
router.register("Observation", sessions_fhir.FhirObservationViewSet, basename="observation")
router.register("Schedule", sessions_fhir.FhirScheduleViewSet, basename="schedule")
router.register("Slot", sessions_fhir.FhirSlotViewSet, basename="slot")
router.register("Questionnaire", intake_fhir.FhirQuestionnaireViewSet, basename="questionnaire")
router.register("QuestionnaireResponse", intake_fhir.FhirQuestionnaireResponseViewSet, basename="questionnaireresponse")

urlpatterns = router.urls
