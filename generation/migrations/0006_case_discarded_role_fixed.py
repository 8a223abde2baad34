# A case an admin discarded (kept, out of every queue and export), and a role an admin
# chose for a case, which the scenario provider must then write for.

from django.db import migrations, models


class Migration(migrations.Migration):

    dependencies = [
        ('generation', '0005_step_lease'),
    ]

    operations = [
        migrations.RemoveConstraint(
            model_name='case',
            name='case_status_valid',
        ),
        migrations.AddField(
            model_name='case',
            name='role_fixed',
            field=models.BooleanField(default=False, help_text='An admin chose the role: the scenario provider writes for it'),
        ),
        migrations.AlterField(
            model_name='case',
            name='status',
            field=models.CharField(choices=[('planned', 'Planned'), ('scenario_generating', 'Generating scenario'), ('scenario_review', 'Scenario awaiting review'), ('note_generating', 'Generating note'), ('note_review', 'Note awaiting review'), ('dialogue_generating', 'Generating dialogue'), ('dialogue_review', 'Dialogue awaiting review'), ('pair_review', 'Pair awaiting final review'), ('adjudication', 'Awaiting adjudication'), ('approved', 'Approved'), ('rejected', 'Rejected'), ('needs_attention', 'Needs attention'), ('failed', 'Failed'), ('cancelled', 'Cancelled'), ('discarded', 'Discarded')], default='planned', max_length=24),
        ),
        migrations.AddConstraint(
            model_name='case',
            constraint=models.CheckConstraint(condition=models.Q(('status__in', ['planned', 'scenario_generating', 'scenario_review', 'note_generating', 'note_review', 'dialogue_generating', 'dialogue_review', 'pair_review', 'adjudication', 'approved', 'rejected', 'needs_attention', 'failed', 'cancelled', 'discarded'])), name='case_status_valid'),
        ),
    ]
