# Liveness of pipeline steps: a renewable lease on a RUNNING step, the time its task
# message was last sent, and how many runs claimed it.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('generation', '0004_regenerated_polished_source_drop_lock_version'),
    ]

    operations = [
        migrations.AddField(
            model_name='pipelinestep',
            name='claim_count',
            field=models.PositiveSmallIntegerField(default=0, help_text='Runs started, takeovers included'),
        ),
        migrations.AddField(
            model_name='pipelinestep',
            name='enqueued_at',
            field=models.DateTimeField(blank=True, help_text='When its task message was last sent', null=True),
        ),
        migrations.AddField(
            model_name='pipelinestep',
            name='lease_expires_at',
            field=models.DateTimeField(blank=True, null=True),
        ),
        migrations.AddField(
            model_name='pipelinestep',
            name='lease_owner',
            field=models.CharField(blank=True, help_text='host:pid of the worker process running it', max_length=200),
        ),
        migrations.AddField(
            model_name='pipelinestep',
            name='lease_token',
            field=models.CharField(blank=True, help_text='The claim of the run that holds the step', max_length=32),
        ),
    ]
