from django import forms

MAX_EXPIRY_DAYS = 3650


class TokenForm(forms.Form):
    """Create an API token for oneself: the scope choices are those the person's role allows."""

    name = forms.CharField(max_length=100, help_text="What the token is for, e.g. “nightly ingest”.")
    scopes = forms.MultipleChoiceField(widget=forms.CheckboxSelectMultiple)
    expires_days = forms.IntegerField(
        min_value=1,
        max_value=MAX_EXPIRY_DAYS,
        required=False,
        initial=90,
        label="Expires after (days)",
        help_text="Leave empty for a token that does not expire.",
    )

    def __init__(self, *args, scopes: tuple[str, ...], **kwargs):
        super().__init__(*args, **kwargs)
        self.fields["scopes"].choices = [(scope, scope) for scope in scopes]
