with

source as (

    select * from {{ source('opendental', 'appointment') }}
    where _deleted_at is null

),

renamed as (

    select

        ----------  ids
        aptnum as appointment_id,
        patnum as patient_id,
        {{ clean_fk('provnum') }} as provider_id,
        {{ clean_fk('provhyg') }} as hygienist_id,
        {{ clean_fk('op') }} as operatory_id,
        {{ clean_fk('clinicnum') }} as clinic_id,
        {{ clean_fk('nextaptnum') }} as next_appointment_id,
        {{ clean_fk('confirmed') }} as confirmation_status_id,
        {{ clean_fk('appointmenttypenum') }} as appointment_type_id,

        ----------  enums
        aptstatus as appointment_status_code,
        {{ decode('aptstatus', {1: 'Scheduled', 2: 'Complete', 3: 'UnschedList', 4: 'ASAP',
                                 5: 'Broken', 6: 'Planned', 7: 'PtNote', 8: 'PtNoteCompleted'}) }}
            as appointment_status,

        ----------  numerics: each pattern character is five minutes
        length(coalesce(pattern, '')) * 5 as duration_minutes,

        ----------  booleans
        {{ to_bool('isnewpatient') }} as is_new_patient,
        {{ to_bool('ishygiene') }} as is_hygiene,

        ----------  timestamps (naive clinic-local time)
        {{ clean_date('aptdatetime') }} as appointment_at,
        cast({{ clean_date('aptdatetime') }} as date) as appointment_date,
        {{ clean_date('datetimearrived') }} as arrived_at,
        {{ clean_date('datetimeseated') }} as seated_at,
        {{ clean_date('datetimedismissed') }} as dismissed_at,
        {{ clean_date('secdatetentry') }} as created_at,
        datetstamp as updated_at,
        _loaded_at

    from source

)

select * from renamed
