with

source as (

    select * from {{ source('opendental', 'schedule') }}
    where _deleted_at is null

),

renamed as (

    select

        ----------  ids
        schedulenum as schedule_id,
        {{ clean_fk('provnum') }} as provider_id,
        {{ clean_fk('employeenum') }} as employee_id,
        {{ clean_fk('clinicnum') }} as clinic_id,
        {{ clean_fk('blockouttype') }} as blockout_type_id,

        ----------  enums
        {{ decode('schedtype', {0: 'Practice', 1: 'Provider', 2: 'Blockout', 3: 'Employee',
                                 4: 'WebSchedASAP'}) }} as schedule_type,
        {{ decode('status', {0: 'Open', 1: 'Closed', 2: 'Holiday'}) }} as schedule_status,

        ----------  numerics
        extract(epoch from (stoptime - starttime)) / 60 as scheduled_minutes,

        ----------  dates
        {{ clean_date('scheddate') }} as schedule_date,
        starttime as start_time,
        stoptime as stop_time,

        ----------  timestamps
        datetstamp as updated_at,
        _loaded_at

    from source

)

select * from renamed
