import pytest
from django.core.management import CommandError, call_command

from generation.models import LlmEndpoint, StructuredOutputMode
from generation.services.endpoints import default_endpoint_configure
from tests.factories import LlmEndpointFactory


@pytest.mark.django_db
def test_with_no_provider_the_local_demo_model_is_the_default(settings, capsys):
    settings.LLM_PROVIDER_CONFIGURED = False
    call_command("configure_llm")
    endpoint = LlmEndpoint.objects.get(is_default=True)
    assert endpoint.name == "local-demo"
    assert endpoint.is_local_demo
    assert endpoint.structured_output_mode == StructuredOutputMode.JSON_OBJECT_SCHEMA
    assert endpoint.base_url == f"http://127.0.0.1:{settings.LOCAL_LLM_PORT}/v1"
    assert "not clinical content" in capsys.readouterr().out


@pytest.mark.django_db
def test_a_provider_key_switches_the_default_and_stores_only_the_variable_name(settings):
    settings.LLM_PROVIDER_CONFIGURED = False
    default_endpoint_configure()
    settings.LLM_PROVIDER_CONFIGURED = True
    settings.LLM_BASE_URL = "https://llm.example.org/v1"
    settings.LLM_MODEL = "big-model"
    endpoint = default_endpoint_configure()
    assert (endpoint.name, endpoint.default_model, endpoint.api_key_env) == ("provider", "big-model", "OPENAI_API_KEY")
    assert endpoint.structured_output_mode == StructuredOutputMode.JSON_SCHEMA
    assert LlmEndpoint.objects.filter(is_default=True).count() == 1
    assert endpoint.models.get().name == "big-model"


@pytest.mark.django_db
def test_openai_itself_is_registered_with_its_batch_api_and_the_admin_s_choice_then_stays(settings):
    settings.LLM_PROVIDER_CONFIGURED = True
    settings.LLM_BASE_URL = ""
    settings.LLM_SUPPORTS_BATCH_API = True
    endpoint = default_endpoint_configure()
    assert endpoint.supports_batch_api
    LlmEndpoint.objects.filter(pk=endpoint.pk).update(supports_batch_api=False)
    assert not default_endpoint_configure().supports_batch_api


@pytest.mark.django_db
def test_an_admin_chosen_default_is_kept(settings):
    chosen = LlmEndpointFactory(name="azure-eu", is_default=True)
    settings.LLM_PROVIDER_CONFIGURED = False
    assert default_endpoint_configure() == chosen


@pytest.mark.django_db
@pytest.mark.parametrize(
    ("key_env", "base_url", "refusal"),
    [
        ("DATABASE_URL", "https://llm.example.org/v1", "$DATABASE_URL holds a setting of this server"),
        ("SECRET_KEY", "https://llm.example.org/v1", "$SECRET_KEY holds a setting of this server"),
        ("OPENAI_KEY", "https://llm.example.org/v1", "$OPENAI_KEY is not an allowed key variable"),
        ("OPENAI_API_KEY", "file:///etc/passwd", "http:// or https://"),
    ],
)
def test_a_provider_that_would_leak_a_secret_is_refused_with_a_clear_error(settings, key_env, base_url, refusal):
    settings.LLM_PROVIDER_CONFIGURED = True
    settings.LLM_API_KEY_ENV = key_env
    settings.LLM_BASE_URL = base_url
    with pytest.raises(CommandError) as raised:
        call_command("configure_llm")
    assert refusal in str(raised.value)
    assert not LlmEndpoint.objects.exists()


@pytest.mark.django_db
def test_the_key_variable_allow_list_comes_from_the_environment(settings):
    settings.LLM_PROVIDER_CONFIGURED = True
    settings.LLM_API_KEY_ENV = "AZURE_OPENAI_KEY"
    settings.LLM_API_KEY_ENV_ALLOWED = ["*_API_KEY", "AZURE_OPENAI_KEY"]
    call_command("configure_llm")
    assert LlmEndpoint.objects.get(is_default=True).api_key_env == "AZURE_OPENAI_KEY"
