from rest_framework.routers import SimpleRouter

from patients.api import PatientViewSet

router = SimpleRouter(trailing_slash=True)
router.register("patients", PatientViewSet, basename="patient")

urlpatterns = router.urls
