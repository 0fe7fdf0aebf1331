"""/fhir/R4/: FHIR style paths (`Patient/12`, no trailing slash). Each app serves its resources."""

from rest_framework.routers import SimpleRouter

from clinic.fhir.resources import FhirPractitionerViewSet
from intake.fhir import FhirQuestionnaireResponseViewSet, FhirQuestionnaireViewSet
from patients.fhir import FhirPatientViewSet
from sessions.fhir.clinical import FhirEncounterViewSet, FhirObservationViewSet, FhirProcedureViewSet
from sessions.fhir.scheduling import FhirAppointmentViewSet, FhirScheduleViewSet, FhirSlotViewSet

router = SimpleRouter(trailing_slash=False)
router.register("Patient", FhirPatientViewSet, basename="patient")
router.register("Practitioner", FhirPractitionerViewSet, basename="practitioner")
router.register("Appointment", FhirAppointmentViewSet, basename="appointment")
router.register("Encounter", FhirEncounterViewSet, basename="encounter")
router.register("Procedure", FhirProcedureViewSet, basename="procedure")
router.register("Observation", FhirObservationViewSet, basename="observation")
router.register("Schedule", FhirScheduleViewSet, basename="schedule")
router.register("Slot", FhirSlotViewSet, basename="slot")
router.register("Questionnaire", FhirQuestionnaireViewSet, basename="questionnaire")
router.register("QuestionnaireResponse", FhirQuestionnaireResponseViewSet, basename="questionnaireresponse")

urlpatterns = router.urls
