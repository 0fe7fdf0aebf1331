from rest_framework.routers import SimpleRouter

from intake.api import FlagViewSet, IntakeLinkViewSet, QuestionnaireViewSet, SubmissionViewSet

router = SimpleRouter(trailing_slash=True)
router.register("intake-questionnaires", QuestionnaireViewSet, basename="intake-questionnaire")
router.register("intake-links", IntakeLinkViewSet, basename="intake-link")
router.register("intake-submissions", SubmissionViewSet, basename="intake-submission")
router.register("patient-flags", FlagViewSet, basename="patient-flag")

urlpatterns = router.urls
